"""The interaction log as other slices see it (`interactions.store` implements it in MongoDB;
the unit tests in memory).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from services.timeline.interactions.model import InteractionDoc, InteractionState
from services.timeline.interactions.tally import Tally
from services.timeline.store.documents import Document


class InteractionLog(Protocol):
    """The interaction log as recording, merges, splits and recounts use it."""

    async def interaction_states(
        self, tenant: str, event_ids: Iterable[str]
    ) -> dict[str, InteractionState]: ...

    async def insert_interactions(self, docs: Sequence[InteractionDoc]) -> set[str]: ...

    async def mark_projected(
        self, tenant: str, event_ids: Sequence[str], *, announced: bool = False
    ) -> None: ...

    async def get_interactions(
        self, tenant: str, event_ids: Iterable[str]
    ) -> list[InteractionDoc]: ...

    async def repoint(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int: ...

    async def move(self, tenant: str, keys: Sequence[str], to_id: str) -> None: ...

    async def move_many(self, tenant: str, moves: Mapping[str, Sequence[str]]) -> None: ...

    async def of_customer(
        self, tenant: str, customer_id: str, fields: Sequence[str]
    ) -> list[Document]: ...

    async def of_customers(
        self, tenant: str, customer_ids: Iterable[str], fields: Sequence[str]
    ) -> list[Document]: ...

    async def tally(self, tenant: str, customer_id: str) -> Tally: ...

    async def case_log(self, tenant: str, case_id: str) -> list[Document]: ...

    async def latest_remark_source(self, tenant: str, customer_id: str) -> Document | None: ...
