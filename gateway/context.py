"""The context every GraphQL operation runs with: the caller, the timeline, the loaders."""

from __future__ import annotations

from collections.abc import Mapping

import strawberry

from gateway.auth import Principal, Unauthenticated
from gateway.loaders import Loaders, create_loaders
from gateway.timeline_client import TimelineClient


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
    ) -> None:
        self.timeline = timeline
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
    def loaders(self) -> Loaders:
        """The DataLoaders, bound to the caller's tenant."""
        if self._loaders is None:
            raise Unauthenticated
        return self._loaders


Info = strawberry.Info[GatewayContext, None]
