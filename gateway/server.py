"""Runs the gateway under uvicorn, driven by the process runner, and detects its readiness."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp

from gateway.app import GRAPHQL_PATH
from gateway.settings import GatewaySettings
from tsunagu.lifecycle import CannotStart, Lifecycle

# Seconds uvicorn lets open requests finish after SIGTERM before it closes them.
GRACEFUL_SHUTDOWN_SECONDS = 10
# Same bound as HTTP bodies: a GraphQL message is small.
_WS_MAX_MESSAGE_BYTES = 1024 * 1024


class GatewayStartFailed(CannotStart):
    """The app's lifespan start-up failed (NATS unreachable, for instance)."""


class GatewayServer(uvicorn.Server, Lifecycle):
    """A uvicorn server whose ``ready`` event is set once it listens and lifespan is done.

    ``async with server:`` serves in a background task until the block ends, then shuts down
    as uvicorn does: stop accepting, let open requests finish, run the lifespan shutdown
    (which closes the timeline client and NATS). Signals are the process runner's business:
    uvicorn's own handlers are not installed.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()
        self._serving: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Leave SIGTERM/SIGINT to whoever runs the server (tsunagu.runtime)."""
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then signal readiness.

        Raises:
            GatewayStartFailed: The lifespan start-up failed; uvicorn would ``sys.exit``.
        """
        try:
            await super().startup(sockets)
        except SystemExit:
            raise GatewayStartFailed("the gateway's start-up failed (see the log above)") from None
        if self.started:
            self.ready.set()

    @property
    def graphql_url(self) -> str:
        """The GraphQL URL on the address actually bound (port 0 becomes a real port)."""
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}{GRAPHQL_PATH}"

    @property
    def stopped(self) -> asyncio.Task[None]:
        """Completes when serving ends; while the server should be running, that is a crash."""
        assert self._serving is not None, "the server is not open"
        return self._serving

    async def open(self) -> None:
        """Serve in the background; return once ready, or raise why start-up failed."""
        self._serving = asyncio.create_task(self.serve(), name="gateway-http")
        ready = asyncio.ensure_future(self.ready.wait())
        try:
            await asyncio.wait({ready, self._serving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not self.ready.is_set():
            await self._serving  # raises the start-up error
            raise GatewayStartFailed("the gateway stopped before it was ready")

    async def close(self) -> None:
        """Shut down gracefully and wait for it."""
        if self._serving is None or self._serving.done():
            return  # never started, or already ended (the runner reports a crash)
        self.should_exit = True
        await asyncio.shield(self._serving)


def create_server(app: ASGIApp, settings: GatewaySettings) -> GatewayServer:
    """Create (not start) the server for an app.

    Args:
        app: The application from ``bootstrap``.
        settings: Host and port.

    Returns:
        The server; ``async with server:`` (or ``await server.serve()``) runs it.
    """
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        # Logging is configured by the entry point, not by uvicorn.
        log_config=None,
        # Access lines would carry GET query strings, i.e. phone numbers and e-mail addresses.
        access_log=False,
        server_header=False,
        # The client address keys the failed-login budget (gateway.rate_limits).
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        ws_max_size=_WS_MAX_MESSAGE_BYTES,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return GatewayServer(config)
