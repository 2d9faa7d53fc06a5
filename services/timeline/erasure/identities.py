"""Identifier values at rest: a blind index to match on, the value sealed beside it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.timeline.erasure.fields import FieldSealer
from services.timeline.erasure.keys import KeyRing
from services.timeline.erasure.ledger import SealedLedger
from services.timeline.store.documents import Document
from tsunagu.crypto import Binding


class SealedIdentifiers:
    """How `identities`, `customers` and the log keep identifier values.

    `value` holds the blind index (so equality lookups and unique indexes keep working),
    `sealed_value` the value under the customer's data key, bound to that index (a value
    moved under another index does not open), and `value_prefixes` short blind indexes of
    its prefixes for search-as-you-type.
    """

    def __init__(self, fields: FieldSealer, *, collection: str) -> None:
        self.fields = fields
        self._collection = collection

    def index(self, tenant: str, kind: str, value: str) -> str:
        return self.fields.index(tenant, kind, value)

    def prefix_queries(self, tenant: str, prefixes: Sequence[str]) -> list[str]:
        return [self.fields.prefix_index(tenant, p) for p in prefixes]

    def _binding(self, tenant: str, index: str) -> Binding:
        return Binding(tenant=tenant, collection=self._collection, field="value", owner=index)

    async def sealed(
        self, tenant: str, owner: str, docs: Sequence[Document], *, prefixes: bool = False
    ) -> list[Document]:
        """Copies of identifier documents with their values sealed under `owner`'s key."""
        if not docs:
            return []
        indexes = [self.index(tenant, d["kind"], d["value"]) for d in docs]
        sealed = await self.fields.seal(
            tenant,
            owner,
            [(d["value"], self._binding(tenant, i)) for d, i in zip(docs, indexes, strict=True)],
        )
        out = []
        for doc, index, value in zip(docs, indexes, sealed, strict=True):
            stored = {**doc, "value": index, "sealed_value": value}
            if prefixes:
                stored["value_prefixes"] = self.fields.prefix_indexes(tenant, doc["value"])
            out.append(stored)
        return out

    async def opened(
        self, tenant: str, docs: Sequence[Document], ring: KeyRing | None = None
    ) -> list[Document]:
        """Identifier documents with their values opened (`[erased]` once shredded)."""
        sealed = [d for d in docs if "sealed_value" in d]
        if not sealed:
            return list(docs)
        values = await self.fields.open(
            tenant,
            [(d["sealed_value"], self._binding(tenant, d["value"])) for d in sealed],
            ring,
        )
        plain = {id(d): v for d, v in zip(sealed, values, strict=True)}
        return [
            {k: v for k, v in {**d, "value": plain[id(d)]}.items() if k not in _AT_REST}
            if id(d) in plain
            else d
            for d in docs
        ]


_AT_REST = frozenset({"sealed_value", "value_prefixes"})


class SealedIdentityRecords:
    """What `identity.store` seals: identities (as above) and the merge ledger's entries."""

    def __init__(self, fields: FieldSealer) -> None:
        self._identifiers = SealedIdentifiers(fields, collection="identities")
        self._ledger = SealedLedger(fields)

    def index(self, tenant: str, kind: str, value: str) -> str:
        return self._identifiers.index(tenant, kind, value)

    def prefix_queries(self, tenant: str, prefixes: Sequence[str]) -> list[str]:
        return self._identifiers.prefix_queries(tenant, prefixes)

    async def warm(self, tenant: str, owners: Iterable[str]) -> None:
        await self._identifiers.fields.warm(tenant, owners)

    async def sealed_identities(
        self, tenant: str, owner: str, docs: Sequence[Document]
    ) -> list[Document]:
        return await self._identifiers.sealed(tenant, owner, docs, prefixes=True)

    async def opened_identities(self, tenant: str, docs: Sequence[Document]) -> list[Document]:
        return await self._identifiers.opened(tenant, docs)

    async def sealed_entry(self, entry: Document) -> Document:
        return await self._ledger.sealed(entry)

    async def opened_entry(self, entry: Document) -> Document:
        return await self._ledger.opened(entry)
