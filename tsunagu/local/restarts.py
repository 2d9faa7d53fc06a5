"""Restarting a crashed child process with exponential back-off, saying so in its log."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from tsunagu.local.ports import PortInUseError
from tsunagu.local.processes import LineSink, ManagedProcess, ProcessFailedError

# From this many failures in a row the log line says the process is crash-looping.
_CRASH_LOOP = 3


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before restarting a process that exited on its own.

    The wait doubles with each failure in a row, from `first` up to `cap`; a process that
    stayed up `stable_after` seconds starts again from `first` the next time it crashes.
    """

    first: float = 0.5
    cap: float = 30.0
    stable_after: float = 60.0

    def delay(self, failures: int) -> float:
        """The wait before the restart that follows `failures` failures in a row (1, 2, ...)."""
        return min(self.cap, self.first * 2.0 ** (failures - 1))


def restart_notice(code: int, delay: float, restarts: int, failures: int) -> str:
    """The prefixed log line of one restart."""
    notice = f"exited with code {code}; restarting in {delay:.1f} s (restart {restarts})"
    if failures >= _CRASH_LOOP:
        notice += f"; it failed {failures} times in a row, backing off up to the cap"
    return notice


async def keep_running(process: ManagedProcess, backoff: Backoff, say: LineSink) -> None:
    """Restart `process` whenever it exits, forever; cancel this to stop supervising it.

    Args:
        process: A started process; each restart reuses its command, port and environment.
        backoff: The waits between restarts.
        say: Where the supervisor's lines go, prefixed with the process's name.
    """
    restarts = failures = 0
    while True:
        up_since = time.monotonic()
        code = await process.wait()
        failures = 1 if time.monotonic() - up_since >= backoff.stable_after else failures + 1
        restarts += 1
        delay = backoff.delay(failures)
        say(process.name, restart_notice(code, delay, restarts, failures))
        await asyncio.sleep(delay)
        try:
            await process.start()
        except ProcessFailedError as failed:
            # Its output is already in the log; the next turn backs off further.
            say(process.name, failed.reason)
            continue
        except PortInUseError as taken:
            say(process.name, str(taken))  # taken while it was down; it may be freed again
            continue
        say(process.name, f"restarted (pid {process.pid})")
