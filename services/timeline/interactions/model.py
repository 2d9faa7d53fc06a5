"""An interaction as the log (`interactions` collection) stores it."""

from __future__ import annotations

from datetime import datetime
from typing import NotRequired, TypedDict

from services.timeline.store.documents import IdentifierDoc


class InteractionDoc(TypedDict):
    """One recorded interaction; the contract message itself is kept whole in `raw`."""

    # `<tenant>/<event id>`: a redelivery finds the event it already stored.
    _id: str
    tenant: str
    event_id: str
    customer_id: str
    # Where identity resolution put it first: a split returns it there.
    origin_customer_id: str
    channel: str
    kind: str
    direction: str
    occurred_at: datetime
    recorded_at: datetime
    conversation_ref: str
    identifiers: list[IdentifierDoc]
    raw: bytes
    # False from the append until the profile (and case) include it; pages leave it out.
    projected: NotRequired[bool]
    # False until its `timeline.updated` notices went out (a redelivery announces it then).
    announced: NotRequired[bool]
    case_id: NotRequired[str]
    switched_from: NotRequired[str]
    # `(occurred_at, event_id)` as one sortable string, set by the store on append: a page is
    # one range of it within the customer (interactions/keys.py).
    timeline_key: NotRequired[str]


class InteractionState(TypedDict):
    """Whether and where an event is stored already (what a redelivery needs to know)."""

    event_id: str
    customer_id: str
    projected: NotRequired[bool]
    announced: NotRequired[bool]
    case_id: NotRequired[str]
