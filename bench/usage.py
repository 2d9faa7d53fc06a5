"""What a measured phase cost the processes: CPU seconds and the timeline's store commands."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from services.timeline.store.command_counts import CountsSnapshot
from tsunagu.local.stack import LocalStack

# Where the bench stack's timeline keeps its store command counts (its data directory).
COUNTS_FILE = "store-command-counts.json"
COUNTS_SETTING = "TSUNAGU_TIMELINE_STORE_COMMAND_COUNTS_FILE"


@dataclass(frozen=True, slots=True)
class Sample:
    """Cumulative CPU seconds per process and store commands per key at one instant."""

    cpu_s: dict[str, float]
    commands: Counter[str]
    command_s: dict[str, float]


@dataclass(frozen=True, slots=True)
class Usage:
    """The difference of two samples: what happened in between."""

    cpu_s: dict[str, float]
    commands: Counter[str]
    command_s: dict[str, float] = field(default_factory=dict)

    def per(self, events: int) -> dict[str, Any]:
        """Per-event figures: CPU ms by process, store commands in total and by command."""
        return {
            "cpu_ms_per_event": {name: 1000 * s / events for name, s in self.cpu_s.items()},
            "store_commands_per_event": sum(self.commands.values()) / events,
            "store_commands": dict(self.commands.most_common()),
            "store_command_seconds": {
                k: round(v, 3)
                for k, v in sorted(self.command_s.items(), key=lambda kv: kv[1], reverse=True)
            },
        }


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children (a profiled one runs under py-spy)."""
    process = psutil.Process(pid)
    return sum(
        times.user + times.system
        for times in (p.cpu_times() for p in [process, *process.children(recursive=True)])
    )


class Meter:
    """Samples the stack's store and timeline processes (the store only when it is embedded)."""

    def __init__(self, stack: LocalStack) -> None:
        self._pids: dict[str, int] = {
            name: stack.processes[name].pid
            for name in ("store", "timeline")
            if name in stack.processes
        }
        self._counts = stack.data_dir / COUNTS_FILE

    async def _counts_after(self, instant: float) -> CountsSnapshot:
        """The timeline's counts as written after `instant` (it rewrites them every 0.2 s)."""
        deadline = time.time() + 10
        while True:
            try:
                snapshot: CountsSnapshot = json.loads(self._counts.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                snapshot = {"written_at": 0.0, "commands": {}}
            if snapshot["written_at"] > instant:
                return snapshot
            if time.time() > deadline:
                raise TimeoutError(f"{self._counts} not rewritten: is the count setting passed?")
            await asyncio.sleep(0.05)

    async def sample(self) -> Sample:
        cpu = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        snapshot = await self._counts_after(time.time())
        tallies = snapshot["commands"]
        return Sample(
            cpu,
            Counter({k: t["count"] for k, t in tallies.items()}),
            {k: t["seconds"] for k, t in tallies.items()},
        )


def between(before: Sample, after: Sample) -> Usage:
    """What the processes did from `before` to `after`."""
    return Usage(
        {name: after.cpu_s[name] - before.cpu_s[name] for name in after.cpu_s},
        after.commands - before.commands,
        {k: s - before.command_s.get(k, 0.0) for k, s in after.command_s.items()},
    )


def store_cpu_s(stack: LocalStack) -> float | None:
    """The embedded store's CPU seconds so far; None against an outside MongoDB."""
    store = stack.processes.get("store")
    return None if store is None else cpu_seconds(store.pid)


def counts_env(data_dir: Path) -> dict[str, str]:
    """The timeline setting that makes it count its store commands into `data_dir`."""
    return {COUNTS_SETTING: str(data_dir / COUNTS_FILE)}
