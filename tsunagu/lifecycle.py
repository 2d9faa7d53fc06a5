"""One shape for everything with a lifecycle: `open`/`close`, and `async with` around them."""

from __future__ import annotations

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
