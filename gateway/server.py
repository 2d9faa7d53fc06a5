"""Runs the gateway under uvicorn and announces readiness once it accepts connections."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from starlette.types import ASGIApp

from gateway.app import GRAPHQL_PATH
from gateway.settings import GatewaySettings

# Seconds uvicorn lets open requests finish after SIGTERM before it closes them.
GRACEFUL_SHUTDOWN_SECONDS = 10
# Same bound as HTTP bodies: a GraphQL message is small.
_WS_MAX_MESSAGE_BYTES = 1024 * 1024


class GatewayServer(uvicorn.Server):
    """A uvicorn server whose ``ready`` event is set once it listens and lifespan is done."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then signal readiness."""
        await super().startup(sockets)
        if self.started:
            self.ready.set()

    @property
    def graphql_url(self) -> str:
        """The GraphQL URL on the address actually bound (port 0 becomes a real port)."""
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}{GRAPHQL_PATH}"


def create_server(app: ASGIApp, settings: GatewaySettings) -> GatewayServer:
    """Create (not start) the server for an app.

    Args:
        app: The application from ``bootstrap``.
        settings: Host and port.

    Returns:
        The server; ``await server.serve()`` runs it until SIGINT/SIGTERM.
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
        ws_max_size=_WS_MAX_MESSAGE_BYTES,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return GatewayServer(config)
