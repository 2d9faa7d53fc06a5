"""The `customers` collection as profile logic and other slices see it (`profiles.store`
implements it in MongoDB; the unit tests in memory).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from services.timeline.profiles.model import CustomerDoc
from services.timeline.store.documents import Document


class CustomerRecords(Protocol):
    """The `customers` collection as identity and the recorder use it."""

    async def get_customers(self, tenant: str, ids: Iterable[str]) -> dict[str, CustomerDoc]: ...

    async def stored_customers(self, tenant: str, ids: Iterable[str]) -> dict[str, CustomerDoc]: ...

    async def merged_into(self, tenant: str, ids: Iterable[str]) -> dict[str, str]: ...

    async def insert_customer(self, doc: CustomerDoc) -> bool: ...

    async def insert_customers(self, docs: Sequence[CustomerDoc]) -> set[str]: ...

    async def replace_customer(self, doc: CustomerDoc, *, expected_version: int) -> bool: ...

    async def replace_customers(self, writes: Sequence[tuple[CustomerDoc, int]]) -> set[str]: ...

    async def delete_unused(self, tenant: str, customer_id: str) -> None: ...

    async def sharing(
        self, tenant: str, field: str, value: str, *, besides: str, limit: int
    ) -> list[Document]: ...
