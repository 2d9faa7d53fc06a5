"""The slices' stores as the domain logic sees them: protocols, implemented by each slice's
`store` module (MongoDB) and by the in-memory stores of the unit tests.

A slice never imports another slice's store module: it names here what it uses, and the
composition root (`bootstrap`) hands it the real store.
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


class CaseRecords(Protocol):
    """The `cases` collection as case assignment, merges, splits and profiles use it."""

    async def get(self, tenant: str, ids: Iterable[str]) -> dict[str, Document]: ...

    async def recent(
        self, tenant: str, customer_id: str, *, limit: int = ...
    ) -> list[Document]: ...

    async def insert(self, doc: Document) -> bool: ...

    async def replace(self, doc: Document, *, expected_version: int) -> bool: ...

    async def latest_open(self, tenant: str, customer_id: str) -> Document | None: ...

    async def repoint(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int: ...

    async def origins_of(self, tenant: str, customer_id: str) -> list[Document]: ...

    async def give(self, tenant: str, case_id: str, customer_id: str) -> None: ...
