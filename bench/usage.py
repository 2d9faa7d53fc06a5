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


# The benchmark's own process (the load generator and its checks) in the CPU figures.
LOAD = "load"


@dataclass(frozen=True, slots=True)
class Sample:
    """Cumulative CPU seconds per process and store commands per key at one instant; the
    machine's busy CPU seconds (every process, every core) and wall-clock time.
    """

    cpu_s: dict[str, float]
    commands: Counter[str]
    command_s: dict[str, float]
    machine_busy_s: float
    at: float


@dataclass(frozen=True, slots=True)
class Usage:
    """The difference of two samples: what happened in between."""

    cpu_s: dict[str, float]
    commands: Counter[str]
    command_s: dict[str, float] = field(default_factory=dict)
    machine_busy_s: float = 0.0
    wall_s: float = 0.0

    def per(self, events: int) -> dict[str, Any]:
        """Per-event figures: CPU ms by process, store commands in total and by command.

        `machine`: what the whole machine's cores were busy with per event (the stack's
        processes, the load, and anything else running), its share of every core over the
        phase, and `cpu_ceiling_per_s`: the rate at which that CPU per event would keep every
        core busy — the most this machine could carry with the work per event as measured.
        """
        cores = psutil.cpu_count() or 1
        machine_ms = 1000 * self.machine_busy_s / events
        return {
            "cpu_ms_per_event": {name: 1000 * s / events for name, s in self.cpu_s.items()},
            "machine": {
                "cores": cores,
                "stack_and_load_cpu_ms_per_event": 1000 * sum(self.cpu_s.values()) / events,
                "busy_cpu_ms_per_event": machine_ms,
                "busy_share": (
                    self.machine_busy_s / (cores * self.wall_s) if self.wall_s > 0 else None
                ),
                "cpu_ceiling_per_s": cores * 1000 / machine_ms if machine_ms > 0 else None,
            },
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


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy so far (not idle, not waiting on I/O)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


class Meter:
    """Samples every process of the stack that is running (the store only when it is
    embedded) and the benchmark's own (`LOAD`), and the whole machine.
    """

    def __init__(self, stack: LocalStack) -> None:
        # An open stack has started every process; one held down has exited meanwhile.
        self._pids: dict[str, int] = {
            name: process.pid
            for name, process in stack.processes.items()
            if process.returncode is None
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
        own = psutil.Process().cpu_times()  # its children are the stack, counted each alone
        cpu = {LOAD: own.user + own.system}
        for name, pid in self._pids.items():
            try:
                cpu[name] = cpu_seconds(pid)
            except psutil.NoSuchProcess:  # stopped or restarted since: left out
                continue
        busy, at = machine_busy_seconds(), time.perf_counter()
        snapshot = await self._counts_after(time.time())
        tallies = snapshot["commands"]
        return Sample(
            cpu,
            Counter({k: t["count"] for k, t in tallies.items()}),
            {k: t["seconds"] for k, t in tallies.items()},
            machine_busy_s=busy,
            at=at,
        )


def between(before: Sample, after: Sample) -> Usage:
    """What the processes did from `before` to `after` (those sampled both times)."""
    return Usage(
        {name: s - before.cpu_s[name] for name, s in after.cpu_s.items() if name in before.cpu_s},
        after.commands - before.commands,
        {k: s - before.command_s.get(k, 0.0) for k, s in after.command_s.items()},
        machine_busy_s=after.machine_busy_s - before.machine_busy_s,
        wall_s=after.at - before.at,
    )


def store_cpu_s(stack: LocalStack) -> float | None:
    """The embedded store's CPU seconds so far; None against an outside MongoDB."""
    store = stack.processes.get("store")
    return None if store is None else cpu_seconds(store.pid)


def counts_env(data_dir: Path) -> dict[str, str]:
    """The timeline setting that makes it count its store commands into `data_dir`."""
    return {COUNTS_SETTING: str(data_dir / COUNTS_FILE)}
