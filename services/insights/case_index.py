"""The tenants' case facts held in memory: figures are read from here, not from the store.

Loaded from the store on a tenant's first question, then kept current by the projector (the
only writer: the service runs one replica, docs/insights.md), so a figure over a month of a
busy tenant costs a pass over its cases in memory instead of reading them all back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from services.insights.facts import CaseFacts
from services.insights.store import InsightsStore


class CaseIndex:
    """Case facts per tenant and case id; `put` after every save, `cases` to read."""

    def __init__(self, store: InsightsStore) -> None:
        self._store = store
        self._tenants: dict[str, dict[str, CaseFacts]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # Saved while the tenant was being loaded: applied over what the load read.
        self._pending: dict[str, dict[str, CaseFacts]] = {}

    def put(self, facts: CaseFacts) -> None:
        held = self._tenants.get(facts.tenant)
        if held is not None:
            held[facts.case_id] = facts
        elif facts.tenant in self._pending:
            self._pending[facts.tenant][facts.case_id] = facts
        # A tenant nobody asked about yet is read from the store when first asked.

    async def cases(self, tenant: str) -> Collection[CaseFacts]:
        held = self._tenants.get(tenant)
        if held is not None:
            return held.values()
        lock = self._locks.setdefault(tenant, asyncio.Lock())
        async with lock:
            if tenant not in self._tenants:
                self._pending[tenant] = {}
                try:
                    loaded = {c.case_id: c for c in await self._store.all_cases(tenant)}
                    loaded.update(self._pending[tenant])
                    self._tenants[tenant] = loaded
                finally:
                    del self._pending[tenant]
        return self._tenants[tenant].values()
