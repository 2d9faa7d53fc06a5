"""The in-memory case index: loaded once per tenant, kept current, never older than a save."""

from __future__ import annotations

import asyncio
from typing import Any

from services.insights.case_index import CaseIndex
from services.insights.facts import CaseFacts


def facts(case_id: str, tenant: str = "t1", contacts: int = 1) -> CaseFacts:
    return CaseFacts(
        tenant=tenant,
        case_id=case_id,
        customer_id="c",
        opened_at=0.0,
        last_event_at=0.0,
        contacts=contacts,
    )


class SlowStore:
    """A store whose load waits until released, to save cases while it loads."""

    def __init__(self, stored: list[CaseFacts]) -> None:
        self.stored = stored
        self.loads = 0
        self.loading = asyncio.Event()
        self.release = asyncio.Event()

    async def all_cases(self, tenant: str) -> list[CaseFacts]:
        self.loads += 1
        self.loading.set()
        await self.release.wait()
        return [c for c in self.stored if c.tenant == tenant]


def index_over(store: SlowStore) -> CaseIndex:
    fake: Any = store
    return CaseIndex(fake)


async def test_a_tenant_is_loaded_once_and_then_kept_current_by_saves() -> None:
    store = SlowStore([facts("k1"), facts("k2", tenant="t2")])
    store.release.set()
    index = index_over(store)
    assert [c.case_id for c in await index.cases("t1")] == ["k1"]
    index.put(facts("k3"))
    index.put(facts("k1", contacts=5))
    held = {c.case_id: c.contacts for c in await index.cases("t1")}
    assert held == {"k1": 5, "k3": 1}
    assert store.loads == 1


async def test_a_save_during_the_load_wins_over_what_the_load_read() -> None:
    store = SlowStore([facts("k1", contacts=1)])
    index = index_over(store)
    first = asyncio.create_task(index.cases("t1"))
    second = asyncio.create_task(index.cases("t1"))
    await store.loading.wait()
    index.put(facts("k1", contacts=2))
    store.release.set()
    assert [c.contacts for c in await first] == [2]
    assert [c.contacts for c in await second] == [2]
    assert store.loads == 1


async def test_a_save_for_a_tenant_nobody_asked_about_is_read_from_the_store_later() -> None:
    store = SlowStore([facts("k1", tenant="t9", contacts=3)])
    store.release.set()
    index = index_over(store)
    index.put(facts("k1", tenant="t9", contacts=1))
    assert [c.contacts for c in await index.cases("t9")] == [3]
