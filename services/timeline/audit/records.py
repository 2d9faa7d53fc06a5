"""What the audit needs of its storage (the MongoDB module implements it; tests may fake it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from services.timeline.audit.model import AuditDoc


class ChainTaken(Exception):
    """Another writer (a replica) stored a record with a sequence number this one chose.

    ``stored`` counts the records of the batch stored before the clash, in order.
    """

    def __init__(self, stored: int) -> None:
        super().__init__(f"the chain moved on after {stored} records")
        self.stored = stored


class AuditRecords(Protocol):
    """The tenant-ordered, append-only audit log."""

    async def last(self, tenant: str, *, after: int = 0) -> AuditDoc | None:
        """The record with the highest sequence of ``tenant`` (scanning from ``after``)."""
        ...

    async def append(self, docs: Sequence[AuditDoc]) -> None:
        """Store ``docs`` in order; ``ChainTaken`` when a sequence number is taken already."""
        ...

    async def page(
        self, tenant: str, *, customer_id: str, before: int | None, limit: int
    ) -> list[AuditDoc]:
        """Records newest first, older than ``before``; of one customer unless it is empty."""
        ...

    def in_order(self, tenant: str) -> AsyncIterator[AuditDoc]:
        """Every record of ``tenant``, oldest first."""
        ...
