"""The slices' stores as the domain logic sees them: protocols, implemented by each slice's
`store` module (MongoDB) and by the in-memory stores of the unit tests.

A slice never imports another slice's store module: it names here what it uses, and the
composition root (`bootstrap`) hands it the real store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from services.timeline.identity.policy import IdentityKey
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


class IdentityRecords(Protocol):
    """Identifiers, the merge ledger and merge suggestions, as the identity slice uses them."""

    async def identity_docs(
        self, tenant: str, keys: Sequence[IdentityKey]
    ) -> dict[IdentityKey, Document]: ...

    async def identities_of(self, tenant: str, customer_id: str) -> list[Document]: ...

    async def add_identity_customers(
        self, tenant: str, keys: Sequence[IdentityKey], customer_ids: Sequence[str]
    ) -> None: ...

    async def claim_identities(
        self,
        tenant: str,
        customer_id: str,
        keys: Sequence[IdentityKey],
        *,
        event_id: str,
        at: datetime,
    ) -> list[IdentityKey]: ...

    async def repoint_identities(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int: ...

    async def move_identities(self, tenant: str, ids: Sequence[object], to_id: str) -> None: ...

    async def record_merge(self, doc: Document) -> None: ...

    async def replace_merge(self, doc: Document) -> None: ...

    async def settle_merge(self, entry: Document, *, status: str) -> None: ...

    async def merges_with_status(self, status: str) -> list[Document]: ...

    async def get_merge(self, tenant: str, merge_id: str) -> Document | None: ...

    async def insert_suggestion(self, doc: Document) -> bool: ...

    async def add_suggestion_signal(self, tenant: str, suggestion: str, signal: str) -> None: ...

    async def get_suggestion(self, tenant: str, suggestion: str) -> Document | None: ...

    async def replace_open_suggestion(self, doc: Document) -> None: ...

    async def open_suggestions(
        self, tenant: str, customer_ids: Sequence[str], limit: int
    ) -> list[Document]: ...
