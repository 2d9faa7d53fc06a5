"""The interaction log's `raw` field sealed under its customer's data key, masked once shredded."""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Sequence

from services.timeline.erasure.fields import key_ids
from services.timeline.erasure.identities import SealedIdentifiers
from services.timeline.erasure.keys import CustomerKeys, KeyRing
from services.timeline.store.documents import (
    DIRECTION_TOKENS,
    KINDS_BY_TOKEN,
    Document,
    by_token,
)
from tsunagu.bus.subjects import CHANNELS_BY_TOKEN
from tsunagu.crypto import Binding, DataKey, open_sealed, seal
from tsunagu.crypto.envelope import DecryptionFailed, key_id_of
from tsunagu.v1 import interaction_pb2

# What every read of a shredded interaction's words shows.
ERASED_TEXT = "[erased]"
# A sealed `raw` starts with the envelope's version byte; a serialized interaction with
# field 1's tag (0x0a): logs written before encryption (or with it off) still read.
_SEALED = 0x01
_DIRECTIONS_BY_TOKEN = by_token(DIRECTION_TOKENS)


def _binding(tenant: str, event_id: str) -> Binding:
    return Binding(tenant=tenant, collection="interactions", field="raw", owner=event_id)


def is_sealed(raw: bytes) -> bool:
    return bool(raw) and raw[0] == _SEALED


def masked(doc: Document) -> bytes:
    """The interaction a shredded entry reads as: when, where and what kind, no words."""
    interaction = interaction_pb2.Interaction(
        event_id=doc.get("event_id", ""),
        tenant=doc.get("tenant", ""),
        channel=CHANNELS_BY_TOKEN.get(doc.get("channel", ""), 0),  # type: ignore[arg-type]
        kind=KINDS_BY_TOKEN.get(doc.get("kind", ""), 0),  # type: ignore[arg-type]
        direction=_DIRECTIONS_BY_TOKEN.get(doc.get("direction", ""), 0),  # type: ignore[arg-type]
    )
    if doc.get("occurred_at") is not None:
        interaction.occurred_at.FromDatetime(doc["occurred_at"])
    interaction.content.text = ERASED_TEXT
    return interaction.SerializeToString()


class RawSealer:
    """Seals `raw` on append and opens it on read, with the origin customer's data key.

    The origin customer (where identity resolution first put the event) owns the key: a
    merge moves entries without re-encrypting them, a split returns them to their origin,
    and erasing a person shreds the keys of every customer merged into them.
    """

    def __init__(self, keys: CustomerKeys, identifiers: SealedIdentifiers | None = None) -> None:
        self._keys = keys
        # The entry's identifiers too (blind index + sealed value), when given.
        self._identifiers = identifiers

    async def seal_docs(self, docs: Sequence[Document]) -> list[Document]:
        """Copies of `docs` (of any tenants) with `raw` sealed."""
        keys = {
            tenant: await self._keys.for_writing(
                tenant, {d["origin_customer_id"] for d in docs if d["tenant"] == tenant}
            )
            for tenant in {doc["tenant"] for doc in docs}
        }
        out = [
            {**doc, "raw": _sealed(keys[doc["tenant"]][doc["origin_customer_id"]], doc)}
            for doc in docs
        ]
        if self._identifiers is not None:
            for doc in out:
                doc["identifiers"] = await self._identifiers.sealed(
                    doc["tenant"], doc["origin_customer_id"], doc.get("identifiers", [])
                )
        return out

    async def opened_read(
        self, tenant: str, read: Awaitable[Sequence[Document]], *, owners: Collection[str] = ()
    ) -> list[Document]:
        """`read`'s entries (of `tenant`) opened; the keys of `owners` read alongside them.

        A customer's page is mostly sealed under that customer's own key: asked for with
        the page, it costs no wait of its own. Other owners' keys (entries merged in from
        other customers) come in one more round trip for them all.
        """
        docs, ring = await self._keys.alongside(tenant, read, owners)
        return await self.open_docs(tenant, docs, ring)

    async def open_docs(
        self, tenant: str, docs: Sequence[Document], ring: KeyRing | None = None
    ) -> list[Document]:
        """One tenant's `docs` with every sealed `raw` opened, or masked once shredded.

        The keys `ring` has not checked are read in one round trip for all the documents.

        Raises:
            DecryptionFailed: A `raw` was tampered with or moved to another entry (fails
                closed: nothing of it is returned).
        """
        raws = [bytes(doc.get("raw") or b"") for doc in docs]
        named = {key_id_of(raw) for raw in raws if is_sealed(raw)}
        if self._identifiers is not None:
            named |= key_ids(
                i["sealed_value"] for d in docs for i in d.get("identifiers") or () if _sealed_id(i)
            )
        if not named:
            return list(docs)
        ring = await self._keys.live(tenant, (), ring, named=named)
        out: list[Document] = []
        for doc, raw in zip(docs, raws, strict=True):
            entry = dict(doc)
            if self._identifiers is not None and doc.get("identifiers"):
                entry["identifiers"] = await self._identifiers.opened(
                    tenant, doc["identifiers"], ring
                )
            if is_sealed(raw):
                key = ring.get(key_id_of(raw))
                binding = _binding(tenant, doc["event_id"])
                entry["raw"] = masked(doc) if key is None else open_sealed(key.key, raw, binding)
            out.append(entry)
        return out


def _sealed_id(identifier: Document) -> bool:
    return "sealed_value" in identifier


def _sealed(key: DataKey, doc: Document) -> bytes:
    binding = _binding(doc["tenant"], doc["event_id"])
    return seal(key.key, key.key_id, bytes(doc["raw"]), binding)


__all__ = ["ERASED_TEXT", "DecryptionFailed", "RawSealer", "is_sealed", "masked"]
