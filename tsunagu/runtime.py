"""The one runner of every Tsunagu process: settings, logging, telemetry, signals, exit codes."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, NoReturn, TypeVar

from pydantic import ValidationError
from pydantic_settings import SettingsError

from tsunagu.lifecycle import CannotStart
from tsunagu.logs import LogFormat, LogSettings, QueryStringScrubber, formatter
from tsunagu.metrics import MetricsAddress, MetricsEndpoint, serve_metrics
from tsunagu.telemetry import configure_telemetry
from tsunagu.tracebacks import exception_name

log = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")

# Exit codes supervisors and tests rely on.
EXIT_CRASHED = 1
EXIT_BAD_SETTINGS = 2


def configure_logging(settings: LogSettings | None = None, *, service: str = "tsunagu") -> None:
    """Log to stderr as `settings` say (by default as TSUNAGU_LOG_* say), without query strings.

    Args:
        settings: Format and level; parsed from the environment when not given.
        service: The process's name in JSON lines (its OpenTelemetry service name).
    """
    settings = settings or parse_settings(LogSettings)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings, service=service))
    # On the handler, not the root logger: a logger's filters do not see records that
    # propagate from child loggers (uvicorn.error, for instance).
    handler.addFilter(QueryStringScrubber())
    logging.basicConfig(level=settings.level, handlers=[handler])
    if settings.format is LogFormat.JSON:
        # Warnings would otherwise be written to stderr as bare text between the JSON lines.
        logging.captureWarnings(True)


def _refuse(message: str) -> NoReturn:
    # Bad configuration: say what is wrong, without a traceback through the event loop.
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(EXIT_BAD_SETTINGS)


def _refuse_invalid(exc: ValidationError) -> NoReturn:
    problems = "\n".join(
        f"  {'.'.join(str(p) for p in err['loc']) or '(settings)'}: {err['msg']}"
        + (f" (got {err['input']!r})" if isinstance(err.get("input"), str | int) else "")
        for err in exc.errors()
    )
    _refuse(f"invalid settings ({exc.title}):\n{problems}")


def parse_settings(factory: Callable[[], S]) -> S:
    """Parse settings once, at start; exit 2 naming every bad setting if they are invalid."""
    try:
        return factory()
    except ValidationError as exc:
        _refuse_invalid(exc)
    except SettingsError as exc:  # a value that is not even parseable (e.g. broken JSON)
        _refuse(f"invalid settings: {exc}")


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
    # Shielded: giving up the wait must not cancel the task being watched.
    waiters: list[asyncio.Future[object]] = [
        asyncio.ensure_future(stop.wait()),
        *(asyncio.shield(e) for e in extra),
    ]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run an async main with uvloop when available; exit 2 on settings it finds invalid."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is optional
        pass
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except ValidationError as exc:  # a setting checked only once something was reached
        _refuse_invalid(exc)
    except SettingsError as exc:
        _refuse(f"invalid settings: {exc}")


def _crash_reason(crash: asyncio.Future[object]) -> object:
    # Retrieved here so asyncio does not also report it as never retrieved.
    return crash.exception() or crash.result()


def _no_crash(_running: object) -> Awaitable[object] | None:
    return None


def _no_metrics(_settings: object) -> MetricsAddress | None:
    return None


# Not slotted: a slotted frozen dataclass cannot be called through `Process[S, R](...)`.
@dataclass(frozen=True)
class Process(Generic[S, R]):
    """What the runner needs to know about one kind of process.

    `serve(settings)` is the composition root's running service as an async context manager:
    entering starts it; leaving stops it gracefully (health NOT_SERVING first, then drain,
    then close connections). `ready_line(settings, running)` is the one line supervisors and
    tests wait for. `crashed(running)` completes if a background task dies, which stops the
    process through the same graceful path and makes it exit 1. `config_errors` are the
    exceptions `serve` raises for configuration that cannot run; they exit 2 like bad
    settings. `metrics(settings)` is where the process serves `/metrics` (tsunagu.metrics).
    """

    name: Callable[[S], str]
    settings: Callable[[], S]
    serve: Callable[[S], AbstractAsyncContextManager[R]]
    ready_line: Callable[[S, R], str]
    crashed: Callable[[R], Awaitable[object] | None] = _no_crash
    config_errors: tuple[type[Exception], ...] = field(default=())
    metrics: Callable[[S], MetricsAddress | None] = _no_metrics


async def serve_until_stopped(process: Process[S, R], settings: S) -> bool:
    """Serve until SIGTERM/SIGINT or a crash; returns whether it crashed."""
    name = process.name(settings)
    crashed_now = False
    try:
        async with process.serve(settings) as running:
            crashed = process.crashed(running)
            crash = None if crashed is None else asyncio.ensure_future(crashed)
            line = process.ready_line(settings, running)

            def announce() -> None:
                print(line, flush=True)

            await wait_for_stop_signal(*([crash] if crash else []), ready=announce)
            if crash is not None and crash.done() and not crash.cancelled():
                crashed_now = True
                reason = _crash_reason(crash)
                failed = reason if isinstance(reason, BaseException) else None
                # The class, and the frames (tsunagu.tracebacks): a message may quote data.
                log.error(
                    "%s: a task crashed (%s); stopping",
                    name,
                    exception_name(failed) if failed else repr(reason),
                    exc_info=failed,
                )
            else:
                log.info("%s stopping", name)
    except process.config_errors as error:
        _refuse(f"{name}: cannot start: {error}")
    except CannotStart as error:
        log.error("%s: cannot start: %s", name, error)
        raise SystemExit(EXIT_CRASHED) from None
    return crashed_now


def run_process(process: Process[S, R]) -> None:
    """The whole life of a process: exit 0 when stopped, 1 after a crash, 2 on bad settings."""
    log_settings = parse_settings(LogSettings)
    settings = parse_settings(process.settings)
    provider = configure_telemetry(f"tsunagu-{process.name(settings)}")
    configure_logging(log_settings, service=str(provider.resource.attributes["service.name"]))
    endpoint = _serve_metrics(process, settings, str(provider.resource.attributes["service.name"]))
    crashed = False

    async def main() -> None:
        nonlocal crashed
        crashed = await serve_until_stopped(process, settings)

    try:
        run(main)
    finally:
        if endpoint is not None:
            endpoint.close()
    if crashed:
        raise SystemExit(EXIT_CRASHED)


def _serve_metrics(process: Process[S, R], settings: S, service: str) -> MetricsEndpoint | None:
    """Serve `/metrics` before anything starts, and print where in one line."""
    address = process.metrics(settings)
    if address is None:
        return None
    try:
        endpoint = serve_metrics(service, address)
    except OSError as error:
        # The variable to change, when the settings come from the environment (pydantic).
        prefix = str(getattr(settings, "model_config", {}).get("env_prefix", ""))
        log.error(
            "%s: cannot serve metrics on %s:%d (change %sMETRICS_PORT): %s",
            process.name(settings),
            address.host,
            address.port,
            prefix,
            error.strerror or error,
        )
        raise SystemExit(EXIT_CRASHED) from None
    print(f"metrics on {endpoint.url}", flush=True)
    return endpoint
