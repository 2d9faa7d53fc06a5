"""The identity slice's store as its logic sees it (`identity.store` implements it in MongoDB)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from services.timeline.identity.documents import (
    Claim,
    IdentityDoc,
    MergeEntry,
    MergeStatus,
    SuggestionDoc,
)
from services.timeline.identity.policy import IdentityKey


class IdentityRecords(Protocol):
    """Identifiers, the merge ledger and merge suggestions, as the identity slice uses them."""

    async def identity_docs(
        self, tenant: str, keys: Sequence[IdentityKey]
    ) -> dict[IdentityKey, IdentityDoc]: ...

    async def identities_of(self, tenant: str, customer_id: str) -> list[IdentityDoc]: ...

    async def add_identity_customers(
        self, tenant: str, keys: Sequence[IdentityKey], customer_ids: Sequence[str]
    ) -> None: ...

    async def claim_identities(self, claim: Claim) -> list[IdentityKey]: ...

    async def claim_many(self, claims: Sequence[Claim]) -> list[list[IdentityKey]]: ...

    async def repoint_identities(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int: ...

    async def merge_identities(
        self,
        tenant: str,
        moves: Mapping[str, str],
        presented: Sequence[tuple[Sequence[IdentityKey], Sequence[str]]] = (),
    ) -> None: ...

    async def move_identities(self, tenant: str, ids: Sequence[object], to_id: str) -> None: ...

    async def record_merge(self, doc: MergeEntry) -> None: ...

    async def record_merges(self, docs: Sequence[MergeEntry]) -> None: ...

    async def replace_merge(self, doc: MergeEntry) -> None: ...

    async def settle_merge(
        self, entry: MergeEntry, *, status: Literal["done", "dropped"]
    ) -> None: ...

    async def settle_merges(self, entries: Sequence[MergeEntry]) -> None: ...

    async def merges_with_status(self, status: MergeStatus) -> list[MergeEntry]: ...

    async def get_merge(self, tenant: str, merge_id: str) -> MergeEntry | None: ...

    async def insert_suggestion(self, doc: SuggestionDoc) -> bool: ...

    async def add_suggestion_signal(self, tenant: str, suggestion: str, signal: str) -> None: ...

    async def get_suggestion(self, tenant: str, suggestion: str) -> SuggestionDoc | None: ...

    async def replace_open_suggestion(self, doc: SuggestionDoc) -> None: ...

    async def open_suggestions(
        self, tenant: str, customer_ids: Sequence[str], limit: int
    ) -> list[SuggestionDoc]: ...
