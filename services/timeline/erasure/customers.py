"""Customer profiles at rest: names, identifiers, soft signals and remarks sealed."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Collection, Sequence
from typing import Any

from services.timeline.erasure.fields import ERASED_VALUE, FieldSealer
from services.timeline.erasure.identities import SealedIdentifiers
from services.timeline.erasure.keys import KeyRing
from services.timeline.store.documents import Document
from tsunagu.crypto import Binding

# Searchable, comparable or personal: what `_sealed` moves into the envelope.
_SIGNALS = ("name_key", "address_key")
_REMARK_WORDS = ("text", "open_questions")


class SealedCustomers:
    """Seals a profile on write and opens it on read (`profiles.store` calls it).

    At rest: `display_name` empty and sealed in `sealed_profile` with the soft signals and
    the last remark's words; soft signals as blind indexes (equality still finds customers
    sharing one); the folded search name as prefix blind indexes; identifiers as in
    `SealedIdentifiers`.
    """

    def __init__(self, fields: FieldSealer) -> None:
        self.fields = fields
        self._identifiers = SealedIdentifiers(fields, collection="customers")

    def signal_index(self, tenant: str, field: str, value: str) -> str:
        """What `sharing(field, value)` looks up."""
        return self.fields.index(tenant, field, value)

    def search_queries(self, tenant: str, key: str) -> list[str]:
        return [self.fields.prefix_index(tenant, key)]

    def _binding(self, tenant: str, customer_id: str) -> Binding:
        return Binding(tenant=tenant, collection="customers", field="profile", owner=customer_id)

    async def sealed_many(self, docs: Sequence[Document], *, new: bool = False) -> list[Document]:
        """`sealed` over many; `new`: customers just made, whose keys are made, not looked for."""
        return await self.fields.sealed_many(docs, lambda d: d["_id"], self.sealed, new_owners=new)

    async def sealed(self, doc: Document) -> Document:
        tenant, customer_id = doc["tenant"], doc["_id"]
        stored = dict(doc)
        secret: dict[str, Any] = {"display_name": doc.get("display_name", "")}
        for field in _SIGNALS:
            if doc.get(field):
                secret[field] = doc[field]
                stored[field] = self.signal_index(tenant, field, doc[field])
        if remark := doc.get("last_agent_remark"):
            secret["remark"] = {k: remark.get(k) for k in _REMARK_WORDS if k in remark}
            stored["last_agent_remark"] = {
                k: v for k, v in remark.items() if k not in _REMARK_WORDS and k != "agent"
            }
            secret["remark_agent"] = remark.get("agent")
        if search := stored.pop("search_name", ""):
            stored["search_prefixes"] = self.fields.prefix_indexes(tenant, search)
        stored["display_name"] = ""
        (stored["sealed_profile"],) = await self.fields.seal(
            tenant, customer_id, [(json.dumps(secret), self._binding(tenant, customer_id))]
        )
        stored["identifiers"] = await self._identifiers.sealed(
            tenant, customer_id, doc.get("identifiers", [])
        )
        return stored

    async def opened_read(
        self, tenant: str, read: Awaitable[Sequence[Document]], *, ids: Collection[str] = ()
    ) -> list[Document]:
        """`read`'s profiles (of `tenant`) opened; the keys of `ids` read alongside them.

        A profile is sealed under its own customer's key: the keys of the customers asked
        for by id come with the read, those of others found (a search) in one round trip.
        """
        return await self.fields.opened_read(
            tenant,
            read,
            owners=ids,
            also=lambda docs: {d["_id"] for d in docs if "sealed_profile" in d},
            open_one=self.opened,
        )

    async def opened(self, doc: Document, ring: KeyRing | None = None) -> Document:
        if "sealed_profile" not in doc:
            return doc
        tenant, customer_id = doc["tenant"], doc["_id"]
        (text,) = await self.fields.open(
            tenant, [(doc["sealed_profile"], self._binding(tenant, customer_id))], ring
        )
        secret: dict[str, Any] = (
            {"display_name": ERASED_VALUE} if text == ERASED_VALUE else json.loads(text)
        )
        opened = {k: v for k, v in doc.items() if k not in {"sealed_profile", "search_prefixes"}}
        opened["display_name"] = secret.get("display_name", "")
        for field in _SIGNALS:
            if field in secret:
                opened[field] = secret[field]
        if "last_agent_remark" in doc:
            opened["last_agent_remark"] = {
                **doc["last_agent_remark"],
                **secret.get("remark", {}),
                **({"agent": secret["remark_agent"]} if secret.get("remark_agent") else {}),
            }
        opened["identifiers"] = await self._identifiers.opened(
            tenant, doc.get("identifiers", []), ring
        )
        return opened
