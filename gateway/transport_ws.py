"""graphql-transport-ws connections: close codes for refused logins, and expiry of their tokens.

Strawberry's handler speaks the protocol; this one decides how a connection's
authentication ends it (docs/api.md, subscriptions):

- ``connection_init`` without valid credentials: closed with ``4401 Unauthorized``.
- too many failed logins from the client's address: closed with ``4429``.
- the principal's credentials expire while connected: closed with ``4401`` at that moment.
  The graphql-ws client treats 4401 as fatal (no blind reconnect loop with a dead token);
  the application reconnects with a fresh token in ``connection_init``.
- on close, every subscription slot of the connection is given back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage
from typing_extensions import override

from gateway.auth import Unauthenticated
from gateway.context import GatewayContext
from gateway.rate_limits import RateLimited

_log = logging.getLogger(__name__)

UNAUTHORIZED = 4401
TOO_MANY_REQUESTS = 4429


class GatewayTransportWS(BaseGraphQLTransportWSHandler[GatewayContext, None]):
    """One graphql-transport-ws connection of the gateway."""

    _expiry: asyncio.Task[None] | None = None

    @override
    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except Unauthenticated:
            await self.websocket.close(code=UNAUTHORIZED, reason="Unauthorized")
            return
        except RateLimited as refused:
            await self.websocket.close(code=TOO_MANY_REQUESTS, reason=refused.message)
            return
        if self.connection_acknowledged:
            valid_until = self.context.principal.valid_until
            if valid_until is not None:
                self._expiry = asyncio.create_task(self._close_at(valid_until))

    async def _close_at(self, valid_until: float) -> None:
        # Wall-clock time, as the token's `exp` is; asyncio's clock only measures the wait.
        await asyncio.sleep(max(0.0, valid_until - time.time()))
        _log.debug("closing a WebSocket whose credentials expired")
        # RuntimeError: the client closed in the same instant, nothing left to close.
        with suppress(RuntimeError):
            await self.websocket.close(code=UNAUTHORIZED, reason="Token expired")

    @override
    async def shutdown(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            with suppress(asyncio.CancelledError):
                await self._expiry
        await super().shutdown()
        if self.context.subscriptions is not None:
            # Normally each stream has given its slot back by now; this covers a stream
            # cancelled before it ever started.
            self.context.subscriptions.close_all()
