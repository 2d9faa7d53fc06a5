"""The `cases` collection as case logic and other slices see it (`cases.store` implements it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from services.timeline.cases.model import CaseDoc
from services.timeline.store.documents import Document


class CaseRecords(Protocol):
    """The `cases` collection as case assignment, merges, splits and profiles use it."""

    async def get(self, tenant: str, ids: Iterable[str]) -> dict[str, CaseDoc]: ...

    async def recent(self, tenant: str, customer_id: str, *, limit: int = ...) -> list[CaseDoc]: ...

    async def insert(self, doc: CaseDoc) -> bool: ...

    async def replace(self, doc: CaseDoc, *, expected_version: int) -> bool: ...

    async def latest_open(self, tenant: str, customer_id: str) -> CaseDoc | None: ...

    async def repoint(self, tenant: str, from_ids: Sequence[str], to_id: str) -> int: ...

    async def origins_of(self, tenant: str, customer_id: str) -> list[Document]: ...

    async def give(self, tenant: str, case_id: str, customer_id: str) -> None: ...
