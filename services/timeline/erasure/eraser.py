"""Erasing a person: shred their data keys, forget their identifiers, keep anonymous counts."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.timeline.erasure.codec import ERASED_TEXT
from services.timeline.erasure.keys import LEASE_SECONDS
from services.timeline.interactions.entries import interaction_of
from services.timeline.store.documents import Document
from tsunagu.crypto import KeyProvider, blind_index
from tsunagu.v1 import interaction_pb2

if TYPE_CHECKING:
    from services.timeline.erasure.store import ErasureStore
    from services.timeline.identity.store import IdentityStore
    from services.timeline.interactions.store import InteractionStore
    from services.timeline.profiles.model import CustomerDoc
    from services.timeline.profiles.store import CustomerStore

MAX_REASON_CHARS = 1000
# What a profile keeps of an erased person: counts and dates, nothing that identifies.
_SCRUBBED = ("name_key", "address_key", "search_name", "last_agent_remark", "name_verified")
_LOG_FIELDS = ("event_id", "tenant", "channel", "kind", "direction", "raw", "origin_customer_id")


class NothingToErase(LookupError):
    """No such customer, or one whose person was erased already."""


@dataclass(frozen=True, slots=True)
class Eraser:
    """Erases one person across the slices' stores (the erasure ledger is its own).

    Order matters for a crash part-way: counts are read first, the certificate is written
    before anything is destroyed (it says what will be), keys are shredded, then the
    clear-text identifiers go. Re-running a half-done erasure finds the certificate's
    person again (`NothingToErase` only once the keys and identifiers are gone).
    """

    erasure: ErasureStore
    interactions: InteractionStore
    customers: CustomerStore
    identities: IdentityStore
    provider: KeyProvider
    clock: Callable[[], datetime]
    # Drops shredded keys from this replica's cache at once (`CustomerKeys.forget`).
    forget: Callable[[str, Iterable[str]], None] = lambda _tenant, _owners: None
    # Other replicas trust a read's "this key is live" this long (`CustomerKeys`): the
    # erasure returns only once that has run out for every answer given before the shred.
    lease_seconds: float = LEASE_SECONDS

    async def erase(
        self, tenant: str, customer_id: str, *, reason: str, actor: dict[str, str]
    ) -> Document:
        """Erase the person `customer_id` belongs to; returns the certificate.

        Raises:
            NothingToErase: Unknown customer, or erased already.
            ValueError: No reason, or too long a one.
        """
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON_CHARS:
            raise ValueError(f"a reason of 1..{MAX_REASON_CHARS} characters is required")
        person = await self._person(tenant, customer_id)
        ids = sorted({p["_id"] for p in person} | {m for p in person for m in p["merged_ids"]})
        log: list[Document] = []
        for member in ids:
            log += await self.interactions.of_customer(tenant, member, _LOG_FIELDS)
        identifiers = {(i["kind"], i["value"]) for p in person for i in p["identifiers"]}
        for member in ids:
            identifiers |= {
                (d["kind"], d["value"]) for d in await self.identities.identities_of(tenant, member)
            }
        if not identifiers and not any(p["display_name"] for p in person) and _all_erased(log):
            raise NothingToErase(f"customer {customer_id} holds nothing to erase")
        owners = set(ids) | {d.get("origin_customer_id") or "" for d in log} - {""}
        index_key = self.provider.index_key(tenant)
        indexes = {blind_index(index_key, kind=k, value=v) for k, v in identifiers}
        certificate: Document = {
            "_id": f"era_{uuid.uuid4().hex}",
            "tenant": tenant,
            "customer_ids": ids,
            "erased_at": self.clock(),
            "by": dict(actor),
            "reason": reason,
            "suppressed_identifiers": len(indexes),
            "counts": anonymous_counts(log),
        }
        certificate["key_ids"] = await self.erasure.shred(tenant, owners)
        shredded_at = time.monotonic()
        self.forget(tenant, owners)
        await self.erasure.add_certificate(certificate)
        await self.erasure.suppress(tenant, indexes, certificate["_id"])
        await self.identities.forget_identities(tenant, ids)
        await self.interactions.forget_identifiers(tenant, ids)
        for doc in person:
            await self._scrub(tenant, doc)
        # The rest of the erasure ran meanwhile: only what is left of the lease is waited.
        await asyncio.sleep(max(0.0, shredded_at + self.lease_seconds - time.monotonic()))
        return certificate

    async def previously_erased(self, tenant: str, customer_id: str) -> bool:
        """Whether the customer presented an identifier of an erased person."""
        found = (await self.customers.get_customers(tenant, [customer_id])).get(customer_id)
        if found is None:
            return False
        index_key = self.provider.index_key(tenant)
        indexes = {
            blind_index(index_key, kind=i["kind"], value=i["value"]) for i in found["identifiers"]
        }
        return bool(indexes and await self.erasure.suppressed(tenant, indexes))

    async def _person(self, tenant: str, customer_id: str) -> list[CustomerDoc]:
        found = (await self.customers.get_customers(tenant, [customer_id])).get(customer_id)
        if found is None:
            raise NothingToErase(f"no customer {customer_id}")
        # A merged customer lives on in its survivor: erasing it erases the whole person.
        survivor_id = found.get("merged_into") or customer_id
        if survivor_id != customer_id:
            survivor = (await self.customers.get_customers(tenant, [survivor_id])).get(survivor_id)
            found = survivor or found
        merged = await self.customers.get_customers(tenant, found["merged_ids"])
        return [found, *merged.values()]

    async def _scrub(self, tenant: str, doc: CustomerDoc) -> None:
        for _ in range(5):  # version-checked: a concurrent projection makes us re-read
            scrubbed: dict[str, Any] = {k: v for k, v in doc.items() if k not in _SCRUBBED}
            scrubbed.update(display_name="", identifiers=[], version=doc["version"] + 1)
            if await self.customers.replace_customer(
                scrubbed,  # type: ignore[arg-type]
                expected_version=doc["version"],
            ):
                return
            fresh = (await self.customers.get_customers(tenant, [doc["_id"]])).get(doc["_id"])
            if fresh is None:
                return
            doc = fresh


def _all_erased(log: Iterable[Document]) -> bool:
    return all(interaction_of(d).content.text == ERASED_TEXT for d in log)


def anonymous_counts(log: Iterable[Document]) -> Document:
    """Contacts by channel, CSAT scores and cancellation reasons: statistics, no person."""
    by_channel: Counter[str] = Counter()
    scores: list[int] = []
    reasons: Counter[str] = Counter()
    for doc in log:
        by_channel[doc.get("channel", "unspecified")] += 1
        action = interaction_of(doc).agent_action
        if action.HasField("csat"):
            scores.append(action.csat.score)
        if action.HasField("cancellation_request"):
            reasons[
                interaction_pb2.CancellationReason.Name(action.cancellation_request.reason)
            ] += 1
    return {
        "contacts": sum(by_channel.values()),
        "contacts_by_channel": dict(by_channel),
        "csat_scores": sorted(scores),
        "cancellation_reasons": dict(reasons),
    }
