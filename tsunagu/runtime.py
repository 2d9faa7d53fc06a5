"""Process entry-point plumbing: logging, signals, run until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


async def wait_for_stop_signal(
    *extra: Awaitable[object], ready: Callable[[], None] | None = None
) -> None:
    """Return on SIGTERM/SIGINT, or as soon as one of `extra` completes (a crashed task).

    `ready` runs once the signal handlers are in place: announcing readiness any earlier
    would let a supervisor's SIGTERM kill the process instead of stopping it gracefully.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready()
    waiters = [asyncio.ensure_future(stop.wait()), *(asyncio.ensure_future(e) for e in extra)]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run an async main with uvloop when available; exit 1 with a clear message on failure."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is optional
        pass
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except ValidationError as exc:
        # Bad settings: say which ones, without a traceback through the event loop.
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in err['loc']) or '(settings)'}: {err['msg']}"
            + (f" (got {err['input']!r})" if isinstance(err.get("input"), str | int) else "")
            for err in exc.errors()
        )
        print(f"invalid settings ({exc.title}):\n{problems}", file=sys.stderr)
        raise SystemExit(2) from None
    except SettingsError as exc:  # a value that is not even parseable (e.g. broken JSON)
        print(f"invalid settings: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
