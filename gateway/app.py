"""Wires the gateway together: ``bootstrap(settings)`` returns the ASGI application.

Starlette routes, limits request bodies and runs the lifespan; Strawberry's ASGI
integration serves GraphQL over HTTP and graphql-transport-ws. This module only adds
authentication, the health routes (gateway.health) and the lifetimes of the timeline channel
and the NATS connection.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cross_web import AsyncHTTPRequestAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Lifespan
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.unset import UnsetType
from typing_extensions import override

from gateway.action_signing import action_signer
from gateway.auth import (
    Authenticator,
    Credentials,
    Unauthenticated,
)
from gateway.authenticators import build_authenticator
from gateway.bus import GatewayBus
from gateway.console.routes import console_routes, graphiql_page
from gateway.context import GatewayContext
from gateway.errors import GatewayError
from gateway.health import health_routes
from gateway.insights_client import InsightsClient
from gateway.rate_limits import Rate, RateLimited, RateLimits
from gateway.schema import build_schema
from gateway.settings import GatewaySettings
from gateway.subscription_caps import SubscriptionCaps
from gateway.timeline_client import TimelineClient
from gateway.transport_ws import GatewayTransportWS
from tsunagu.bus.connection import nats_login

_log = logging.getLogger(__name__)

GRAPHQL_PATH = "/graphql"

# GraphQL documents are small (the token limit refuses big ones anyway); this bounds the
# memory one request can take before parsing even starts.
MAX_BODY_BYTES = 1024 * 1024
# Seconds in-flight timeline calls get when the gateway stops. uvicorn has already waited
# for open HTTP requests by then, so this only covers stragglers.
_CHANNEL_CLOSE_GRACE_SECONDS = 2.0


def rate_limits(settings: GatewaySettings) -> RateLimits:
    """The rate limits ``settings`` ask for (real time)."""
    return RateLimits(
        queries=Rate(settings.rate_limit_queries_per_minute, settings.rate_limit_queries_burst),
        mutations=Rate(
            settings.rate_limit_mutations_per_minute, settings.rate_limit_mutations_burst
        ),
        failed_authentications=Rate(
            settings.rate_limit_failed_auth_per_minute, settings.rate_limit_failed_auth_burst
        ),
    )


class GatewayGraphQL(GraphQL[GatewayContext, None]):
    """Strawberry's ASGI app; every operation runs as an authenticated principal."""

    graphql_transport_ws_handler_class = GatewayTransportWS

    def __init__(
        self,
        *,
        schema: BaseSchema,
        timeline: TimelineClient,
        bus: GatewayBus,
        authenticator: Authenticator,
        settings: GatewaySettings,
        limits: RateLimits,
        insights: InsightsClient | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=settings.queries_over_get,
            # Subscriptions speak graphql-transport-ws only, never the legacy graphql-ws.
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            # Strawberry's own cap counts every in-flight operation of a connection; it
            # stays a backstop above the subscription cap (gateway.subscription_caps).
            max_subscriptions_per_connection=max(100, settings.max_subscriptions_per_connection),
        )
        self._settings = settings
        self._timeline = timeline
        self._insights = insights
        self._bus = bus
        self._authenticator = authenticator
        self._write_wait = settings.write_wait_seconds
        self._queue_size = settings.subscription_queue_size
        self._limits = limits
        self._subscription_caps = SubscriptionCaps(
            per_connection=settings.max_subscriptions_per_connection,
            per_principal=settings.max_subscriptions_per_principal,
        )

    def _context(self, request: Request | WebSocket, *, cache_loads: bool = True) -> GatewayContext:
        return GatewayContext(
            timeline=self._timeline,
            bus=self._bus,
            headers=request.headers,
            cache_loads=cache_loads,
            write_wait_seconds=self._write_wait,
            subscription_queue_size=self._queue_size,
            rate_limits=self._limits,
            subscriptions=self._subscription_caps.connection(),
            client_address=request.client.host if request.client else "",
            insights=self._insights,
        )

    async def _authenticate(self, context: GatewayContext, credentials: Credentials) -> None:
        """Authenticate the caller into ``context``, within the address's login budget.

        Raises:
            RateLimited: The client's address failed authentication too often lately.
            Unauthenticated: The credentials are missing or invalid (counted).
        """
        context.check_address()
        try:
            principal = await self._authenticator.authenticate(credentials)
        except Unauthenticated:
            context.failed_authentication()
            raise
        context.authenticated(principal)

    @override
    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GatewayContext:
        """Authenticate an HTTP request, or prepare a WebSocket connection's context.

        Raises:
            Unauthenticated: The HTTP request's credentials are missing or invalid; the
                application answers 401.
            RateLimited: The client's address failed authentication too often; 429.
        """
        if isinstance(request, WebSocket):
            # Authenticated on connection_init (see on_ws_connect). The connection lives
            # long, so its loaders must not cache: they would serve stale customers.
            return self._context(request, cache_loads=False)
        context = self._context(request)
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            # The IDE page is static and public: browsers cannot attach a bearer token to
            # it. Strawberry renders it (or a 404) without executing anything.
            return context
        await self._authenticate(context, Credentials(headers=request.headers))
        return context

    @override
    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL from the project's own copies of its assets: it works offline."""
        return graphiql_page(self._settings)

    @override
    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: GatewayContext,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        """Run an HTTP operation; one refused by the rate limit answers 429 with Retry-After."""
        result = await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )
        if context.rate_limited is not None:
            sub_response.status_code = 429
            sub_response.headers["retry-after"] = str(context.rate_limited.retry_after)
        return result

    @override
    async def on_ws_connect(self, context: GatewayContext) -> UnsetType | dict[str, object] | None:
        """Authenticate a WebSocket connection from its handshake headers and init payload.

        Raises:
            Unauthenticated: The connection closes with 4401 (gateway.transport_ws).
            RateLimited: The client's address failed authentication too often; 4429.
        """
        credentials = Credentials(
            headers=context.headers, connection_params=context.connection_params or {}
        )
        await self._authenticate(context, credentials)
        return await super().on_ws_connect(context)


def _error_response(error: Exception, *, status: int, headers: dict[str, str]) -> Response:
    assert isinstance(error, GatewayError)
    body = {"errors": [{"message": error.message, "extensions": error.extensions}]}
    return JSONResponse(body, status_code=status, headers=headers)


def _unauthenticated(request: Request, error: Exception) -> Response:  # noqa: ARG001 - Starlette's signature
    """Answer an HTTP request that failed authentication (handler for ``Unauthenticated``)."""
    return _error_response(error, status=401, headers={"www-authenticate": "Bearer"})


def _rate_limited(request: Request, error: Exception) -> Response:  # noqa: ARG001 - Starlette's signature
    """Answer an HTTP request refused before authentication (handler for ``RateLimited``)."""
    assert isinstance(error, RateLimited)
    return _error_response(error, status=429, headers={"retry-after": str(error.retry_after)})


def _lifecycle(
    timeline: TimelineClient, bus: GatewayBus, insights: InsightsClient | None = None
) -> tuple[Lifespan[Starlette], list[Route]]:
    """The lifespan owning the timeline channel and the NATS connection, and the health routes."""
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
        if insights is not None:
            # Opening is lazy (connects on the first call): insights down never stops start-up.
            await insights.open()
        serving = True
        try:
            yield
        finally:
            serving = False
            if insights is not None:
                await insights.close(grace=_CHANNEL_CLOSE_GRACE_SECONDS)
            # Subscriptions end first (their followers unsubscribe), then the connection.
            await bus.close()
            _log.info("NATS connection closed")
            await timeline.close(grace=_CHANNEL_CLOSE_GRACE_SECONDS)
            _log.info("timeline client closed")

    return lifespan, health_routes(timeline=timeline, bus=bus, serving=lambda: serving)


def bootstrap(
    settings: GatewaySettings,
    *,
    authenticator: Authenticator | None = None,
    timeline: TimelineClient | None = None,
    bus: GatewayBus | None = None,
    limits: RateLimits | None = None,
    insights: InsightsClient | None = None,
) -> Starlette:
    """Build the gateway's object graph; tests pass their own adapters.

    Args:
        settings: The parsed settings.
        authenticator: Who callers are; by default the one ``settings.auth_mode`` names.
        timeline: An unopened timeline client; by default one for
            ``settings.timeline_address``. The app's lifespan opens and closes it.
        bus: An unopened NATS side; by default one for ``settings.nats_url``. The app's
            lifespan opens and closes it.
        limits: The rate limits; by default those of ``settings``, on the real clock.
        insights: An unopened insights client; by default one for
            ``settings.insights_address``. The app's lifespan opens and closes it.

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
            address=settings.timeline_address,
            timeout_seconds=settings.grpc_timeout_seconds,
            token=settings.timeline_token.get_secret_value(),
            tls=settings.timeline_tls(),
        )
    if bus is None:
        bus = GatewayBus(
            url=settings.nats_url,
            publish_timeout_seconds=settings.publish_timeout_seconds,
            signer=action_signer(settings),
            login=nats_login(settings.nats_user, settings.nats_password),
            tls=settings.nats_tls,
        )
    if insights is None:
        insights = InsightsClient(
            address=settings.insights_address,
            timeout_seconds=settings.grpc_timeout_seconds,
            token=settings.insights_token.get_secret_value(),
        )
    graphql = GatewayGraphQL(
        schema=build_schema(settings),
        timeline=timeline,
        bus=bus,
        authenticator=authenticator,
        settings=settings,
        limits=limits if limits is not None else rate_limits(settings),
        insights=insights,
    )
    lifespan, health = _lifecycle(timeline, bus, insights)
    # GET serves GraphiQL's page or queries; with neither, it is refused (405) before
    # authentication or parsing, and the URL's query string is never looked at.
    methods = ["GET", "POST"] if settings.graphiql or settings.queries_over_get else ["POST"]
    return Starlette(
        routes=[
            Route(GRAPHQL_PATH, graphql, methods=methods),
            WebSocketRoute(GRAPHQL_PATH, graphql),
            *health,
            *console_routes(settings),
        ],
        exception_handlers={Unauthenticated: _unauthenticated, RateLimited: _rate_limited},
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
    )
