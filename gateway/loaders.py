"""Per-request DataLoaders, so a query's fan-out becomes one timeline call per batch."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from strawberry.dataloader import DataLoader

from gateway.timeline_client import TimelineClient
from tsunagu.v1 import timeline_pb2

# Bounds one GetCustomers / GetCases request: the largest list field (a page of 100 cases)
# fits into one call, and the timeline accepts up to 500 ids.
_MAX_IDS_PER_CALL = 100


@dataclass(frozen=True)
class CasePage:
    """One page of a case's interactions: the key of ``Loaders.case_timelines``."""

    customer_id: str
    case_id: str
    first: int
    after: str | None


@dataclass(frozen=True)
class Loaders:
    """The DataLoaders of one GraphQL operation (never shared across callers)."""

    customers: DataLoader[str, timeline_pb2.Customer | None]
    cases: DataLoader[str, timeline_pb2.Case | None]
    # GetMergeHistory takes one customer: the loader de-duplicates and runs a batch's
    # calls concurrently, so a list of customers costs one round trip of latency.
    merge_history: DataLoader[str, list[timeline_pb2.MergeRecord]]
    # ListInteractions takes one customer: the entries of a timeline page that share a case
    # ask for its timeline once, and a batch's distinct pages are read concurrently.
    case_timelines: DataLoader[CasePage, timeline_pb2.ListInteractionsResponse | None]

    def forget_writes(self, *, customer_ids: list[str], case_ids: list[str]) -> None:
        """Drop cached values a mutation may have changed, so its payload reads them fresh.

        Args:
            customer_ids: Customers the mutation touched.
            case_ids: Cases the mutation touched.
        """
        for customer_id in customer_ids:
            _forget(self.customers, customer_id)
            _forget(self.merge_history, customer_id)
        for case_id in case_ids:
            _forget(self.cases, case_id)
        # Keyed by page, not by case: a write may have added to any page of its case.
        self.case_timelines.clear_all()


def _forget(loader: DataLoader[str, Any], key: str) -> None:
    # DataLoader.clear raises KeyError for a key it never loaded.
    with contextlib.suppress(KeyError):
        loader.clear(key)


def create_loaders(timeline: TimelineClient, *, tenant: str, cache: bool = True) -> Loaders:
    """Create fresh loaders bound to one tenant.

    Args:
        timeline: The timeline client.
        tenant: The caller's tenant; every load is scoped to it.
        cache: Whether to remember loaded values for the loaders' lifetime. Long-lived
            owners (a WebSocket connection) turn it off so they never serve stale data.

    Returns:
        The loaders.
    """

    async def load_customers(ids: list[str]) -> list[timeline_pb2.Customer | None]:
        return await timeline.get_customers(tenant, ids)

    async def load_cases(ids: list[str]) -> list[timeline_pb2.Case | None]:
        return await timeline.get_cases(tenant, ids)

    async def load_merge_history(ids: list[str]) -> list[list[timeline_pb2.MergeRecord]]:
        return list(await asyncio.gather(*(timeline.get_merge_history(tenant, id_) for id_ in ids)))

    async def load_case_timelines(
        pages: list[CasePage],
    ) -> list[timeline_pb2.ListInteractionsResponse | None]:
        return list(
            await asyncio.gather(
                *(
                    timeline.list_interactions(
                        tenant,
                        page.customer_id,
                        page_size=page.first,
                        after=page.after,
                        case_id=page.case_id,
                    )
                    for page in pages
                )
            )
        )

    return Loaders(
        customers=DataLoader(load_fn=load_customers, max_batch_size=_MAX_IDS_PER_CALL, cache=cache),
        cases=DataLoader(load_fn=load_cases, max_batch_size=_MAX_IDS_PER_CALL, cache=cache),
        merge_history=DataLoader(
            load_fn=load_merge_history, max_batch_size=_MAX_IDS_PER_CALL, cache=cache
        ),
        case_timelines=DataLoader(
            load_fn=load_case_timelines, max_batch_size=_MAX_IDS_PER_CALL, cache=cache
        ),
    )
