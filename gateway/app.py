"""Wires the gateway together: ``bootstrap(settings)`` returns the ASGI application.

Starlette routes, limits request bodies and runs the lifespan; Strawberry's ASGI
integration serves GraphQL over HTTP and graphql-transport-ws. This module only adds
authentication, the health probe and the lifetimes of the timeline channel and the NATS
connection.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Lifespan
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType
from typing_extensions import override

from gateway.action_signing import action_signer
from gateway.auth import (
    Authenticator,
    Credentials,
    Principal,
    Unauthenticated,
)
from gateway.authenticators import build_authenticator
from gateway.bus import GatewayBus
from gateway.context import GatewayContext
from gateway.errors import ErrorCode
from gateway.schema import build_schema
from gateway.settings import GatewaySettings
from gateway.timeline_client import TimelineClient
from tsunagu.bus.connection import nats_login

_log = logging.getLogger(__name__)

GRAPHQL_PATH = "/graphql"
HEALTH_PATH = "/healthz"

# GraphQL documents are small (the token limit refuses big ones anyway); this bounds the
# memory one request can take before parsing even starts.
MAX_BODY_BYTES = 1024 * 1024
# Seconds in-flight timeline calls get when the gateway stops. uvicorn has already waited
# for open HTTP requests by then, so this only covers stragglers.
_CHANNEL_CLOSE_GRACE_SECONDS = 2.0


class GatewayGraphQL(GraphQL[GatewayContext, None]):
    """Strawberry's ASGI app; every operation runs as an authenticated principal."""

    def __init__(
        self,
        *,
        schema: BaseSchema,
        timeline: TimelineClient,
        bus: GatewayBus,
        authenticator: Authenticator,
        settings: GatewaySettings,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=settings.queries_over_get,
            # Subscriptions speak graphql-transport-ws only, never the legacy graphql-ws.
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        )
        self._timeline = timeline
        self._bus = bus
        self._authenticator = authenticator
        self._write_wait = settings.write_wait_seconds
        self._queue_size = settings.subscription_queue_size

    def _context(
        self,
        request: Request | WebSocket,
        *,
        principal: Principal | None = None,
        cache_loads: bool = True,
    ) -> GatewayContext:
        return GatewayContext(
            timeline=self._timeline,
            bus=self._bus,
            principal=principal,
            headers=request.headers,
            cache_loads=cache_loads,
            write_wait_seconds=self._write_wait,
            subscription_queue_size=self._queue_size,
        )

    @override
    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GatewayContext:
        """Authenticate an HTTP request, or prepare a WebSocket connection's context.

        Raises:
            Unauthenticated: The HTTP request's credentials are missing or invalid; the
                application answers 401.
        """
        if isinstance(request, WebSocket):
            # Authenticated on connection_init (see on_ws_connect). The connection lives
            # long, so its loaders must not cache: they would serve stale customers.
            return self._context(request, cache_loads=False)
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            # The IDE page is static and public: browsers cannot attach a bearer token to
            # it. Strawberry renders it (or a 404) without executing anything.
            return self._context(request)
        principal = await self._authenticator.authenticate(Credentials(headers=request.headers))
        return self._context(request, principal=principal)

    @override
    async def on_ws_connect(self, context: GatewayContext) -> UnsetType | dict[str, object] | None:
        """Authenticate a WebSocket connection from its handshake headers and init payload.

        Raises:
            ConnectionRejectionError: Unauthenticated; Strawberry closes with 4403.
        """
        credentials = Credentials(
            headers=context.headers, connection_params=context.connection_params or {}
        )
        try:
            principal = await self._authenticator.authenticate(credentials)
        except Unauthenticated as error:
            raise ConnectionRejectionError({"code": ErrorCode.UNAUTHENTICATED.value}) from error
        context.authenticated(principal)
        return await super().on_ws_connect(context)


def _unauthenticated(request: Request, error: Exception) -> Response:  # noqa: ARG001 - Starlette's signature
    """Answer an HTTP request that failed authentication (handler for ``Unauthenticated``)."""
    extensions = {"code": ErrorCode.UNAUTHENTICATED.value}
    body = {"errors": [{"message": str(error), "extensions": extensions}]}
    return JSONResponse(body, status_code=401, headers={"www-authenticate": "Bearer"})


def _lifecycle(timeline: TimelineClient, bus: GatewayBus) -> tuple[Lifespan[Starlette], Route]:
    """The lifespan owning the timeline channel and the NATS connection, and the health probe."""
    serving = False

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:  # noqa: ARG001 - Starlette's signature
        nonlocal serving
        # A failure of either fails start-up, and uvicorn stops.
        await timeline.open()
        _log.info("timeline client for %s opened", timeline.address)
        try:
            await bus.open()
        except BaseException:
            await timeline.close()
            raise
        _log.info("NATS connection to %s opened", bus.url)
        serving = True
        try:
            yield
        finally:
            serving = False
            # Subscriptions end first (their followers unsubscribe), then the connection.
            await bus.close()
            _log.info("NATS connection closed")
            await timeline.close(grace=_CHANNEL_CLOSE_GRACE_SECONDS)
            _log.info("timeline client closed")

    async def health(request: Request) -> Response:  # noqa: ARG001 - Starlette's signature
        # A timeline or NATS that is down does not fail the probe: restarting the gateway
        # would not help (NATS reconnects by itself), and reads keep working. Both are reported.
        if not serving:
            return PlainTextResponse("not serving\n", status_code=503)
        return PlainTextResponse(
            f"ok\ntimeline: {timeline.connectivity()}\nnats: {bus.connectivity()}\n"
        )

    return lifespan, Route(HEALTH_PATH, health, methods=["GET"])


def bootstrap(
    settings: GatewaySettings,
    *,
    authenticator: Authenticator | None = None,
    timeline: TimelineClient | None = None,
    bus: GatewayBus | None = None,
) -> Starlette:
    """Build the gateway's object graph; tests pass their own adapters.

    Args:
        settings: The parsed settings.
        authenticator: Who callers are; by default the one ``settings.auth_mode`` names.
        timeline: An unopened timeline client; by default one for
            ``settings.timeline_address``. The app's lifespan opens and closes it.
        bus: An unopened NATS side; by default one for ``settings.nats_url``. The app's
            lifespan opens and closes it.

    Returns:
        The ASGI application.

    Raises:
        AuthenticationNotConfigured: ``settings.auth_mode`` cannot run and no
            authenticator was given.
        ActionSigningNotConfigured: No bus was given and the settings name no usable
            signing key for agent actions.
    """
    if authenticator is None:
        authenticator = build_authenticator(settings)
    if timeline is None:
        timeline = TimelineClient(
            address=settings.timeline_address, timeout_seconds=settings.grpc_timeout_seconds
        )
    if bus is None:
        bus = GatewayBus(
            url=settings.nats_url,
            publish_timeout_seconds=settings.publish_timeout_seconds,
            signer=action_signer(settings),
            login=nats_login(settings.nats_user, settings.nats_password),
            tls=settings.nats_tls,
        )
    graphql = GatewayGraphQL(
        schema=build_schema(settings),
        timeline=timeline,
        bus=bus,
        authenticator=authenticator,
        settings=settings,
    )
    lifespan, health = _lifecycle(timeline, bus)
    # GET serves GraphiQL's page or queries; with neither, it is refused (405) before
    # authentication or parsing, and the URL's query string is never looked at.
    methods = ["GET", "POST"] if settings.graphiql or settings.queries_over_get else ["POST"]
    return Starlette(
        routes=[
            Route(GRAPHQL_PATH, graphql, methods=methods),
            WebSocketRoute(GRAPHQL_PATH, graphql),
            health,
        ],
        exception_handlers={Unauthenticated: _unauthenticated},
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
    )
