"""The context every GraphQL operation runs with: the caller, the timeline, the loaders."""

from __future__ import annotations

from collections.abc import Mapping

import strawberry

from gateway.auth import Principal, Unauthenticated
from gateway.bus import GatewayBus, bus_unavailable
from gateway.loaders import Loaders, create_loaders
from gateway.timeline_client import TimelineClient

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
    ) -> None:
        self.timeline = timeline
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
