"""A process run by tsunagu.runtime whose background task dies once it is ready (for tests)."""

from __future__ import annotations

import asyncio
import os
import sys

from tsunagu.lifecycle import Lifecycle
from tsunagu.runtime import Process, run_process


class CrashingService(Lifecycle):
    """Its task fails when TEST_CRASH is set; stopping says so, proving the graceful path ran."""

    def __init__(self, crash: bool) -> None:
        self._crash = crash
        self.task: asyncio.Task[None]

    async def _work(self) -> None:
        if self._crash:
            # The message carries data (as a driver error quotes a document): never logged.
            raise RuntimeError(f"the background task failed on {os.environ['TEST_CRASH']}")
        await asyncio.Event().wait()

    async def open(self) -> None:
        self.task = asyncio.create_task(self._work())

    async def close(self) -> None:
        self.task.cancel()
        print("closed gracefully", file=sys.stderr, flush=True)


CRASHING: Process[bool, CrashingService] = Process(
    name=lambda _crash: "crashing",
    settings=lambda: bool(os.environ.get("TEST_CRASH")),
    serve=CrashingService,
    ready_line=lambda _crash, _service: "crashing ready on nowhere",
    crashed=lambda service: service.task,
)

if __name__ == "__main__":
    run_process(CRASHING)
