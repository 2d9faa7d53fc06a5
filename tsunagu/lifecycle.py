"""One shape for everything with a lifecycle: `open`/`close`, and `async with` around them."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self


class CannotStart(RuntimeError):
    """Start-up failed for a reason the message states fully; the runner prints it, no traceback."""


class Lifecycle:
    """Base of the objects Tsunagu starts and stops: `async with thing:` opens and closes it.

    Subclasses implement `open` (fail fast, leave nothing running on failure) and `close`
    (graceful, safe to call after a failed or partial open).
    """

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Periodic(Lifecycle):
    """Runs `tick` at open, then every `every_seconds` until closed, in a task of its own."""

    def __init__(self, *, every_seconds: float, name: str) -> None:
        self._every = every_seconds
        self._name = name
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> None:
        """One round of the work; it handles its own failures (the next round tries again)."""
        raise NotImplementedError

    async def _run(self) -> None:
        # Checked as well as cancelled: Python 3.11's wait_for (inside nats-py's requests) can
        # swallow a cancellation that arrives as the reply does, and the loop would go on.
        while not self._closing.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._every)

    async def open(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def close(self) -> None:
        self._closing.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
