"""A case as the `cases` collection stores it: the state machine's input and output."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict


class FollowUp(TypedDict):
    """A task an agent owes the customer (created by a transfer)."""

    id: str
    agent_id: str
    reason: str
    created_by_event_id: str
    created_at: datetime
    due_at: datetime
    done: bool
    done_at: datetime | None
    done_by_event_id: str


class CaseDoc(TypedDict):
    """One case. Times are UTC; `None` until the event that sets them happens."""

    _id: str
    tenant: str
    # Bumped by every write: writes are version-checked (`CaseStore.replace`).
    version: int
    customer_id: str
    # Where the case was opened: a split of a merge moves it back there.
    origin_customer_id: str
    opened_by_event_id: str
    status: str
    owner_agent_id: str
    queue: str
    department: str
    escalation_level: int
    escalation_reason: str
    channels: list[str]
    last_channel: str
    last_channel_at: datetime | None
    opened_at: datetime
    updated_at: datetime
    last_customer_at: datetime | None
    last_response_at: datetime | None
    first_response_at: datetime | None
    first_response_seconds: float | None
    resolved_at: datetime | None
    resolution_seconds: float | None
    resolution_summary: str
    reopen_count: int
    tags: list[str]
    csat: dict[str, Any] | None
    cancellation_request: dict[str, Any] | None
    cancellation_outcome: str
    follow_ups: list[FollowUp]
    next_follow_up_due: datetime | None
    last_handoff: dict[str, Any] | None
    interaction_count: int
