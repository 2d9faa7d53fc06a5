"""Per-request DataLoaders, so a query's fan-out becomes one timeline call per batch."""

from __future__ import annotations

from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from gateway.timeline_client import TimelineClient
from tsunagu.v1 import timeline_pb2

# Bounds one GetCustomers request; a query can only name this many customers anyway
# (the alias limit), so the bound matters only for future list fields.
_MAX_CUSTOMERS_PER_CALL = 100


@dataclass(frozen=True)
class Loaders:
    """The DataLoaders of one GraphQL operation (never shared across callers)."""

    customers: DataLoader[str, timeline_pb2.Customer | None]


def create_loaders(timeline: TimelineClient, *, tenant: str, cache: bool = True) -> Loaders:
    """Create fresh loaders bound to one tenant.

    Args:
        timeline: The timeline client.
        tenant: The caller's tenant; every load is scoped to it.
        cache: Whether to remember loaded values for the loaders' lifetime. Long-lived
            owners (a WebSocket connection) turn it off so they never serve stale customers.

    Returns:
        The loaders.
    """

    async def load_customers(ids: list[str]) -> list[timeline_pb2.Customer | None]:
        return await timeline.get_customers(tenant, ids)

    return Loaders(
        customers=DataLoader(
            load_fn=load_customers, max_batch_size=_MAX_CUSTOMERS_PER_CALL, cache=cache
        )
    )
