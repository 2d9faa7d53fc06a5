"""Personal fields sealed under their customer's data key, and blind indexes to find them by."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence

from services.timeline.erasure.keys import CustomerKeys, KeyRing
from services.timeline.store.documents import Document
from tsunagu.crypto import Binding, KeyProvider, blind_index, open_sealed, seal
from tsunagu.crypto.envelope import DecryptionFailed, key_id_of

SealOne = Callable[[Document], Awaitable[Document]]
# What a field reads as once its customer's key is shredded.
ERASED_VALUE = "[erased]"
# Blind indexes of prefixes are cut short: a search needs candidates, not proof, and
# a short index says less about the value to whoever reads the collection.
_PREFIX_INDEX_HEX = 16
MIN_PREFIX_CHARS = 2


class FieldSealer:
    """Seals and opens fields of one collection, and computes the tenant's blind indexes."""

    def __init__(self, keys: CustomerKeys, provider: KeyProvider) -> None:
        self._keys = keys
        self._provider = provider

    def index(self, tenant: str, kind: str, value: str) -> str:
        """The blind index stored (and queried) instead of an identifier value."""
        return "bi:" + blind_index(self._provider.index_key(tenant), kind=kind, value=value)

    def prefix_index(self, tenant: str, prefix: str) -> str:
        """The blind index of one search prefix (what a prefix query asks for)."""
        digest = blind_index(self._provider.index_key(tenant), kind="prefix", value=prefix)
        return digest[:_PREFIX_INDEX_HEX]

    def prefix_indexes(self, tenant: str, value: str) -> list[str]:
        """The blind index of every searchable prefix of `value` (stored beside it)."""
        return [
            self.prefix_index(tenant, value[:end])
            for end in range(MIN_PREFIX_CHARS, len(value) + 1)
        ]

    async def sealed_many(
        self,
        docs: Sequence[Document],
        owner: Callable[[Document], str],
        seal_one: SealOne,
        *,
        new_owners: bool = False,
    ) -> list[Document]:
        """`seal_one` over `docs`, their owners' keys loaded first in one round trip each tenant.

        `new_owners`: the owners were just made, so their keys are made without a look first.
        """
        for tenant in {doc["tenant"] for doc in docs}:
            owners = {owner(d) for d in docs if d["tenant"] == tenant}
            await self._keys.warm(tenant, owners, new=new_owners)
        return [await seal_one(doc) for doc in docs]

    async def warm(self, tenant: str, owners: Iterable[str]) -> None:
        await self._keys.warm(tenant, owners)

    async def opened_read(
        self,
        tenant: str,
        read: Awaitable[Sequence[Document]],
        *,
        owners: Collection[str],
        also: Callable[[Sequence[Document]], Iterable[str]],
        open_one: Callable[[Document, KeyRing], Awaitable[Document]],
    ) -> list[Document]:
        """`read`'s documents, each opened by `open_one`, with their keys in one ring.

        The keys of `owners` (known before the read) are read alongside the documents; the
        owners only the documents name (`also`: a merged customer's entries, a lookup by
        id) in one more round trip for them all, never one per document.
        """
        docs, ring = await self._keys.alongside(tenant, read, owners)
        ring = await self._keys.live(tenant, also(docs), ring)
        return [await open_one(doc, ring) for doc in docs]

    async def seal(
        self, tenant: str, owner: str, fields: Sequence[tuple[str, Binding]]
    ) -> list[str]:
        """Each plaintext sealed under `owner`'s data key (made when it has none), as base64.

        Text rather than BSON binary: the embedded store cannot `replace_one` a document
        holding binary ("Object of type bytes is not JSON serializable"), and profiles and
        cases are written by replace.
        """
        if not fields:
            return []
        key = (await self._keys.for_writing(tenant, [owner]))[owner]
        return [
            base64.b64encode(seal(key.key, key.key_id, text.encode(), binding)).decode()
            for text, binding in fields
        ]

    async def open(
        self,
        tenant: str,
        fields: Sequence[tuple[str | bytes, Binding]],
        ring: KeyRing | None = None,
    ) -> list[str]:
        """Each sealed field's plaintext, or `ERASED_VALUE` when its key was shredded.

        The keys come from `ring` where it has checked their owners, else from the store
        (one round trip for all the fields).

        Raises:
            DecryptionFailed: Tampered, or moved to another record (fails closed).
        """
        if not fields:
            return []
        envelopes = [(_envelope(sealed), binding) for sealed, binding in fields]
        keys = await self._keys.for_reading(tenant, {key_id_of(s) for s, _ in envelopes}, ring)
        out: list[str] = []
        for sealed, binding in envelopes:
            key = keys.get(key_id_of(sealed))
            out.append(
                ERASED_VALUE if key is None else open_sealed(key.key, sealed, binding).decode()
            )
        return out


def key_ids(sealed: Iterable[str | bytes]) -> set[str]:
    """The key ids sealed fields name (what to fetch before opening them).

    Raises:
        DecryptionFailed: One is not a sealed field (fails closed).
    """
    return {key_id_of(_envelope(value)) for value in sealed}


def _envelope(sealed: str | bytes) -> bytes:
    if isinstance(sealed, bytes):
        return sealed
    try:
        return base64.b64decode(sealed, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptionFailed("sealed field is not base64") from exc
