"""The context every GraphQL operation runs with: the caller, the timeline, the loaders."""

from __future__ import annotations

from collections.abc import Mapping

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types.graphql import OperationType

from gateway.auth import Principal, Unauthenticated
from gateway.bus import GatewayBus, bus_unavailable
from gateway.insights_client import InsightsClient, insights_unavailable
from gateway.loaders import Loaders, create_loaders
from gateway.rate_limits import RateLimited, RateLimits
from gateway.subscription_caps import ConnectionSubscriptions
from gateway.timeline_client import TimelineClient
from tsunagu.v1 import insights_pb2

# Defaults of the settings with the same names (gateway.settings), for contexts built in tests.
DEFAULT_WRITE_WAIT_SECONDS = 3.0
DEFAULT_SUBSCRIPTION_QUEUE_SIZE = 100


class GatewayContext:
    """Per-request (HTTP) or per-connection (WebSocket) context of GraphQL operations.

    Over HTTP the caller is authenticated before the context exists. A WebSocket
    connection is authenticated later, from its ``connection_init`` payload, which is why
    the principal can be missing until ``authenticated()`` is called.
    """

    def __init__(
        self,
        *,
        timeline: TimelineClient,
        principal: Principal | None = None,
        headers: Mapping[str, str] | None = None,
        cache_loads: bool = True,
        bus: GatewayBus | None = None,
        write_wait_seconds: float = DEFAULT_WRITE_WAIT_SECONDS,
        subscription_queue_size: int = DEFAULT_SUBSCRIPTION_QUEUE_SIZE,
        rate_limits: RateLimits | None = None,
        subscriptions: ConnectionSubscriptions | None = None,
        client_address: str = "",
        insights: InsightsClient | None = None,
    ) -> None:
        self.timeline = timeline
        self._insights = insights
        self._topic_loader: DataLoader[str, insights_pb2.TopicSummary | None] | None = None
        # None (contexts built in-process by tests): no rate limit, no subscription cap.
        self._rate_limits = rate_limits
        self.subscriptions = subscriptions
        self.client_address = client_address
        # Set when an operation was refused by the rate limit (HTTP answers 429 then).
        self.rate_limited: RateLimited | None = None
        self.write_wait_seconds = write_wait_seconds
        self.subscription_queue_size = subscription_queue_size
        self._bus = bus
        self.headers: Mapping[str, str] = headers or {}
        # Set by Strawberry's graphql-transport-ws handler on connection_init.
        self.connection_params: dict[str, object] | None = None
        self._cache_loads = cache_loads
        self._principal: Principal | None = None
        self._loaders: Loaders | None = None
        if principal is not None:
            self.authenticated(principal)

    def authenticated(self, principal: Principal) -> None:
        """Record who the caller is, and bind fresh loaders to the caller's tenant.

        Args:
            principal: The authenticated caller.
        """
        self._principal = principal
        self._loaders = create_loaders(
            self.timeline, tenant=principal.tenant, cache=self._cache_loads
        )

    def admit(self, operation: OperationType) -> None:
        """Charge an operation to the caller's rate limit, before it is validated or run.

        Raises:
            RateLimited: Over the limit; also kept in ``rate_limited``.
        """
        if self._rate_limits is None:
            return
        principal = self.principal
        try:
            self._rate_limits.admit(
                tenant=principal.tenant,
                subject=principal.subject,
                mutation=operation is OperationType.MUTATION,
            )
        except RateLimited as refused:
            self.rate_limited = refused
            raise

    def check_address(self) -> None:
        """Refuse the client's address if it failed authentication too often (``RateLimited``)."""
        if self._rate_limits is not None:
            self._rate_limits.check_address(self.client_address)

    def failed_authentication(self) -> None:
        """Count a failed authentication against the client's address."""
        if self._rate_limits is not None:
            self._rate_limits.failed_authentication(self.client_address)

    @property
    def topic_loader(self) -> DataLoader[str, insights_pb2.TopicSummary | None]:
        """Messages' topics by event id, for this operation (or connection), batched."""
        if self._topic_loader is None:
            self._topic_loader = self.insights.topic_loader(
                self.principal.tenant, cache=self._cache_loads
            )
        return self._topic_loader

    @property
    def insights(self) -> InsightsClient:
        """The insights service's client (service metrics, customers at risk)."""
        if self._insights is None:
            raise insights_unavailable()
        return self._insights

    @property
    def principal(self) -> Principal:
        """The caller; the only source of the tenant for every read."""
        if self._principal is None:
            raise Unauthenticated
        return self._principal

    @property
    def bus(self) -> GatewayBus:
        """The NATS side: publishing agent actions, hearing what the timeline stored.

        Raises:
            GatewayError: ``BUS_UNAVAILABLE`` when this gateway runs without a bus.
        """
        if self._bus is None:
            raise bus_unavailable()
        return self._bus

    @property
    def loaders(self) -> Loaders:
        """The DataLoaders, bound to the caller's tenant."""
        if self._loaders is None:
            raise Unauthenticated
        return self._loaders


Info = strawberry.Info[GatewayContext, None]
