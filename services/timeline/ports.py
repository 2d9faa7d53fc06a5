"""The profiles' and the log's stores as other slices see them: protocols, implemented by
`profiles.store` and `interactions.store` (MongoDB) and by the unit tests' in-memory stores.

A slice never imports another slice's store module: it types against a protocol (these, and
`cases.records`, `identity.records`), and the composition root (`bootstrap`) hands it the
real store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from services.timeline.interactions.tally import Tally
from services.timeline.store.documents import Document


class CustomerRecords(Protocol):
    """The `customers` collection as identity and the recorder use it."""

    async def get_customers(self, tenant: str, ids: Iterable[str]) -> dict[str, Document]: ...

    async def insert_customer(self, doc: Document) -> bool: ...

    async def replace_customer(self, doc: Document, *, expected_version: int) -> bool: ...

    async def delete_unused(self, tenant: str, customer_id: str) -> None: ...

    async def sharing(
        self, tenant: str, field: str, value: str, *, besides: str, limit: int
    ) -> list[Document]: ...


class InteractionLog(Protocol):
    """The interaction log as recording, merges, splits and recounts use it."""

    async def interaction_states(
        self, tenant: str, event_ids: Iterable[str]
    ) -> dict[str, Document]: ...

    async def insert_interactions(self, docs: Sequence[Document]) -> set[str]: ...

    async def mark_projected(self, tenant: str, event_ids: Sequence[str]) -> None: ...

    async def repoint(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int: ...

    async def move(self, tenant: str, keys: Sequence[str], to_id: str) -> None: ...

    async def of_customer(
        self, tenant: str, customer_id: str, fields: Sequence[str]
    ) -> list[Document]: ...

    async def tally(self, tenant: str, customer_id: str) -> Tally: ...

    async def case_log(self, tenant: str, case_id: str) -> list[Document]: ...

    async def latest_remark_source(self, tenant: str, customer_id: str) -> Document | None: ...
