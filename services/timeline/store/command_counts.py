"""Counts a process's store commands by command and collection (opt-in, for `make bench`)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TypedDict

from pymongo import monitoring


class CommandTally(TypedDict):
    """Commands of one `name:collection` key and the seconds their round trips took."""

    count: int
    seconds: float


class CountsSnapshot(TypedDict):
    """What the counts file holds: cumulative tallies and when they were written (epoch s)."""

    written_at: float
    commands: dict[str, CommandTally]


def _key(event: monitoring.CommandStartedEvent) -> str:
    # Most commands name their collection as the command's value (`{"find": "customers"}`).
    target = event.command.get(event.command_name)
    return f"{event.command_name}:{target}" if isinstance(target, str) else event.command_name


class CommandCounts(monitoring.CommandListener):
    """A pymongo command listener keeping cumulative counts and round-trip seconds per key.

    Listener callbacks run on the event loop's thread; the lock only guards the writer
    thread's copy. Cheap enough to leave on for a benchmark, off by default all the same.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._seconds: dict[str, float] = {}
        self._keys: dict[tuple[int, int], str] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        key = _key(event)
        self._keys[(event.request_id, event.operation_id or 0)] = key
        with self._lock:
            self._counts[key] += 1

    def _finished(
        self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent
    ) -> None:
        key = self._keys.pop((event.request_id, event.operation_id or 0), event.command_name)
        with self._lock:
            self._seconds[key] = self._seconds.get(key, 0.0) + event.duration_micros / 1e6

    succeeded = _finished
    failed = _finished

    def snapshot(self) -> CountsSnapshot:
        """The tallies so far (cumulative since the process started)."""
        with self._lock:
            commands = {
                key: CommandTally(count=count, seconds=self._seconds.get(key, 0.0))
                for key, count in self._counts.items()
            }
        return CountsSnapshot(written_at=time.time(), commands=commands)


def write_periodically(counts: CommandCounts, path: Path, *, every_s: float = 0.2) -> None:
    """Keep `path` holding `counts.snapshot()` as JSON, rewritten every `every_s` seconds.

    A daemon thread, so that the benchmark reads the counts of a running timeline without a
    port or an API of its own; each write replaces the file whole (rename), never half-written.
    """

    def loop() -> None:
        scratch = path.with_suffix(".tmp")
        while True:
            scratch.write_text(json.dumps(counts.snapshot()))
            scratch.replace(path)
            time.sleep(every_s)

    path.parent.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=loop, name="store-command-counts", daemon=True).start()


def counting_listeners(path: Path | None) -> list[monitoring.CommandListener]:
    """The client's listeners: none, or one whose counts are written to `path`."""
    if path is None:
        return []
    counts = CommandCounts()
    write_periodically(counts, path)
    return [counts]
