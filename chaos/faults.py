"""The faults, one per scenario: kill -9, a graceful restart, or a process held down."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass
from typing import Literal

from chaos.load import LOAD_CHANNELS
from tsunagu.local.processes import ManagedProcess
from tsunagu.local.stack import LocalStack

Action = Literal["kill", "restart", "hold"]


@dataclass(frozen=True, slots=True)
class Fault:
    """What happens to which process of the stack."""

    action: Action
    process: str
    hold_s: float = 0.0

    @property
    def label(self) -> str:
        if self.action == "kill":
            return f"kill -9 {self.process}"
        if self.action == "restart":
            return f"restart {self.process}"
        return f"{self.process} down {self.hold_s:g} s"

    async def inject(self, stack: LocalStack, *, within_s: float) -> float:
        """Cause the fault; the seconds until the process was ready again.

        Raises:
            TimeoutError: It was not back within `within_s` (the table says so).
        """
        started = time.monotonic()
        process = stack.processes[self.process]
        if self.action == "hold":
            async with stack.held_down(self.process):
                await asyncio.sleep(self.hold_s)  # the outage itself
            return time.monotonic() - started
        before = process.pid
        os.kill(before, signal.SIGKILL if self.action == "kill" else signal.SIGTERM)
        await _restarted(process, before, within_s)
        return time.monotonic() - started


async def _restarted(process: ManagedProcess, before: int, within_s: float) -> None:
    """Wait until the supervisor has started `process` again and it printed its ready line."""
    deadline = time.monotonic() + within_s
    while not (
        process.returncode is None and process.pid != before and process.ready_match is not None
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.name} not back within {within_s:.0f} s")
        await asyncio.sleep(0.1)


def full(outage_s: float) -> list[Fault]:
    """Every process killed in turn, NATS and the store restarted, the store held down."""
    return [
        *(Fault("kill", f"ingest-{channel}") for channel in LOAD_CHANNELS),
        Fault("kill", "timeline"),
        Fault("kill", "gateway"),
        Fault("kill", "nats"),
        Fault("kill", "store"),
        Fault("restart", "nats"),
        Fault("restart", "store"),
        Fault("hold", "store", outage_s),
    ]


def short(outage_s: float = 10.0) -> list[Fault]:
    """The faults `make test` runs: each must already lose and duplicate nothing."""
    return [
        Fault("kill", "timeline"),
        Fault("kill", "ingest-chat"),
        Fault("kill", "nats"),
        # Shorter than the store client's server selection timeout (30 s): a brief outage.
        Fault("hold", "store", outage_s),
    ]
