"""The customer profile: pure functions over customer documents (no store, no clock)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.timeline.interactions.tally import Tally
from services.timeline.profiles.consents import ConsentDoc, combined_consents, with_consent
from services.timeline.profiles.model import CustomerDoc
from services.timeline.profiles.signals import address_key, name_key
from services.timeline.store.documents import IdentifierDoc, aware

_CUSTOMER_NAMESPACE = uuid.UUID("5b0f3c8e-7d1a-4a52-9a7e-2f1c0e3d9b61")


def customer_id_for(tenant: str, event_id: str) -> str:
    """Deterministic id of the customer first seen in `event_id`: a replay creates the same ids."""
    return f"cus_{uuid.uuid5(_CUSTOMER_NAMESPACE, f'{tenant}/{event_id}').hex}"


@dataclass(frozen=True, slots=True)
class Contact:
    """What one interaction contributes to its customer's profile."""

    channel: str
    occurred_at: datetime
    display_name: str
    identifiers: tuple[IdentifierDoc, ...]
    # A postal address the customer gave (web form); a soft signal for merge suggestions.
    address: str = ""
    # A note or handoff: what the agent said, for the top of the customer's view.
    remark: Mapping[str, Any] | None = None
    # The interaction's event id: a recount from the log may have counted it already.
    event_id: str = ""
    # A channel verified one of its identifiers: its name may replace a verified one.
    verified: bool = False
    # A consent decision (KIND_CONSENT_CHANGE): the newest per channel x purpose is kept.
    consent: ConsentDoc | None = None


def new_customer(
    *, tenant: str, customer_id: str, created_at: datetime, first_contact_at: datetime
) -> CustomerDoc:
    return {
        "_id": customer_id,
        "tenant": tenant,
        "version": 0,
        "status": "active",
        "display_name": "",
        "identifiers": [],
        "channels": [],
        "by_channel": {},
        "interaction_count": 0,
        # Set at creation so survivor choice in a merge is stable before any projection.
        "first_contact_at": first_contact_at,
        "last_contact_at": first_contact_at,
        "created_at": created_at,
        "merged_ids": [],
    }


def _union_identifiers(*groups: Iterable[IdentifierDoc]) -> list[IdentifierDoc]:
    seen: dict[tuple[str, str], IdentifierDoc] = {}
    for group in groups:
        for ident in group:
            kept = seen.setdefault((ident["kind"], ident["value"]), ident.copy())
            # Verified once is verified: a later unverified sighting does not undo it.
            if ident.get("verified"):
                kept["verified"] = True
    return list(seen.values())


def _may_rename(customer: CustomerDoc, contact: Contact, *, newest: bool) -> bool:
    """Whether the contact's name replaces the customer's: the newest name wins, except that
    an unverified contact never renames a customer a verified one named (anyone can type a
    name into a form next to somebody's address), and a verified name replaces an unverified
    one whenever it comes.
    """
    if not customer.get("display_name"):
        return True
    if customer.get("name_verified"):
        return contact.verified and newest
    return newest or contact.verified


def apply_contact(customer: CustomerDoc, contact: Contact) -> CustomerDoc:
    """The customer after one more interaction (the input is not changed).

    An interaction a recount from the log already counted (it is in `counted_pending`) is not
    counted again; it only updates the rest of the profile.
    """
    updated = customer.copy()
    at = aware(contact.occurred_at)
    first = customer.get("first_contact_at")
    last = customer.get("last_contact_at")
    is_first_projection = customer.get("interaction_count", 0) == 0
    pending = customer.get("counted_pending", [])
    if contact.event_id and contact.event_id in pending:
        updated["counted_pending"] = [e for e in pending if e != contact.event_id]
    else:
        updated["interaction_count"] = customer.get("interaction_count", 0) + 1
        by_channel = dict(customer.get("by_channel", {}))
        by_channel[contact.channel] = by_channel.get(contact.channel, 0) + 1
        updated["by_channel"] = by_channel
        updated["channels"] = sorted(by_channel)
    updated["first_contact_at"] = (
        at if is_first_projection or first is None else min(aware(first), at)
    )
    newest = is_first_projection or last is None or at >= aware(last)
    updated["last_contact_at"] = at if newest else last
    if contact.display_name and _may_rename(customer, contact, newest=newest):
        updated["display_name"] = contact.display_name
        updated["name_key"] = name_key(contact.display_name)
        updated["name_verified"] = contact.verified
    if contact.address and (newest or not customer.get("address_key")):
        updated["address_key"] = address_key(contact.address)
    updated["identifiers"] = _union_identifiers(
        customer.get("identifiers", []), contact.identifiers
    )
    if contact.remark is not None:
        updated = with_remark(updated, contact.remark)
    if contact.consent is not None:
        updated["consents"] = with_consent(customer.get("consents", {}), contact.consent)
    return updated


def with_remark(customer: CustomerDoc, remark: Mapping[str, Any]) -> CustomerDoc:
    """The customer with `remark` as the last agent remark, unless a later one is kept."""
    kept = customer.get("last_agent_remark")
    if kept and aware(kept["occurred_at"]) > aware(remark["occurred_at"]):
        return customer
    return {**customer, "last_agent_remark": dict(remark)}


def with_open_case(customer: CustomerDoc, open_case_id: str) -> CustomerDoc:
    """The customer with its open (not resolved) case; "" when it has none."""
    return {**customer, "open_case_id": open_case_id}


def with_tally(customer: CustomerDoc, tally: Tally) -> CustomerDoc:
    """The customer with counts and contact dates recounted from its log."""
    updated = customer.copy()
    updated["by_channel"] = dict(tally.by_channel)
    updated["channels"] = sorted(tally.by_channel)
    updated["interaction_count"] = sum(tally.by_channel.values())
    updated["first_contact_at"] = tally.first_contact_at or customer.get("first_contact_at")
    updated["last_contact_at"] = tally.last_contact_at or customer.get("last_contact_at")
    updated["counted_pending"] = list(tally.pending)
    return updated


def merged_profile(
    survivor: CustomerDoc, losers: Iterable[CustomerDoc], *, tally: Tally
) -> CustomerDoc:
    """The survivor after a merge; counts and dates come from the interaction log itself."""
    losers = list(losers)
    updated = with_tally(survivor, tally)
    if not updated.get("display_name") or not updated.get("name_verified"):
        # A verified name among the losers beats the survivor's unverified one.
        named = [d for d in losers if d.get("display_name")]
        better = next((d for d in named if d.get("name_verified")), None)
        if better is None and not updated.get("display_name"):
            better = next(iter(named), None)
        if better is not None:
            updated["display_name"] = better["display_name"]
            updated["name_verified"] = bool(better.get("name_verified"))
    updated["identifiers"] = _union_identifiers(
        survivor.get("identifiers", []), *(d.get("identifiers", []) for d in losers)
    )
    merged_ids = list(survivor.get("merged_ids", []))
    for loser in losers:
        for merged in [loser["_id"], *loser.get("merged_ids", [])]:
            if merged not in merged_ids:
                merged_ids.append(merged)
    updated["merged_ids"] = merged_ids
    # Merges combine consents: per channel x purpose, the most recent decision wins.
    updated["consents"] = combined_consents(
        survivor.get("consents", {}), *(d.get("consents", {}) for d in losers)
    )
    return updated


def rebuilt_profile(
    customer: CustomerDoc,
    *,
    tally: Tally,
    identifiers: Iterable[IdentifierDoc],
    display_name: str,
    name_verified: bool,
    merged_ids: list[str],
    consents: dict[str, ConsentDoc] | None = None,
) -> CustomerDoc:
    """The customer recomputed from its log after a split (counts, dates, identifiers, and
    the consents its own interactions gave: each side of a split gets its own back).
    """
    updated = with_tally(customer, tally)
    if consents is not None:
        updated["consents"] = consents
    updated["identifiers"] = _union_identifiers(identifiers)
    updated["display_name"] = display_name
    updated["name_verified"] = name_verified
    updated["name_key"] = name_key(display_name)
    updated["merged_ids"] = merged_ids
    return updated


def survivor_order(customer: CustomerDoc) -> tuple[datetime, str]:
    """Merges keep the customer first seen; ties go to the smaller id (deterministic)."""
    return aware(customer.get("first_contact_at") or customer["created_at"]), customer["_id"]
