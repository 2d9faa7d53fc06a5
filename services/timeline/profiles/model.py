"""A customer profile as the `customers` collection stores it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired, TypedDict

from services.timeline.store.documents import IdentifierDoc


class CustomerDoc(TypedDict):
    """One customer: what the log says about them, and where merges and splits left them."""

    _id: str
    tenant: str
    # Bumped by every write: writes are version-checked (`CustomerStore.replace_customer`).
    version: int
    # "active", or "merged" (then `merged_into` names the customer it lives on in).
    status: str
    display_name: str
    # The display name came from a contact a channel verified: unverified ones leave it alone.
    name_verified: NotRequired[bool]
    identifiers: list[IdentifierDoc]
    channels: list[str]
    by_channel: dict[str, int]
    interaction_count: int
    first_contact_at: datetime
    last_contact_at: datetime
    created_at: datetime
    merged_ids: list[str]
    merged_into: NotRequired[str]
    # Customers an agent split this one from: never merged with it again automatically.
    separated_from: NotRequired[list[str]]
    # Soft signals for merge suggestions, and the folded name `SearchCustomers` matches.
    name_key: NotRequired[str]
    address_key: NotRequired[str]
    search_name: NotRequired[str]
    # Events a recount from the log counted before their writer projected them.
    counted_pending: NotRequired[list[str]]
    open_case_id: NotRequired[str]
    last_agent_remark: NotRequired[dict[str, Any]]
    # Current consent per "channel:purpose" (`profiles.consents`); history is on the timeline.
    consents: NotRequired[dict[str, dict[str, Any]]]
