"""What insights keeps of one committed timeline event: a flat, typed record, no personal data."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from tsunagu.v1 import interaction_pb2 as ipb
from tsunagu.v1 import notices_pb2, timeline_pb2

_NOT_CUSTOMER_FACING = frozenset({ipb.CHANNEL_AGENT_DESK, ipb.CHANNEL_UNSPECIFIED})


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One event of a case, as the metric definitions need it (times are epoch seconds).

    Attributes:
        action: The agent action's name (`resolution`, `csat`, ...); empty for contacts.
        case_status: The case's status right after this event (`CaseStatus` number).
        queue: Where the event routed the case (call queue, handoff queue, transfer target).
    """

    tenant: str
    event_id: str
    case_id: str
    customer_id: str
    occurred_at: float
    recorded_at: float
    channel: int
    kind: int
    direction: int
    actor_type: int
    actor_id: str = ""
    action: str = ""
    conversation: str = ""
    case_status: int = 0
    queue: str = ""
    csat_score: int = 0
    has_comment: bool = False
    cancellation_reason: int = 0
    cancellation_outcome: int = 0
    follow_up_task: str = ""

    @property
    def is_customer_contact(self) -> bool:
        """The customer reached out or answered (the same rule the timeline opens cases by)."""
        return (
            not self.action
            and self.channel not in _NOT_CUSTOMER_FACING
            and self.direction == ipb.DIRECTION_INBOUND
            and self.actor_type in {ipb.ACTOR_TYPE_CUSTOMER, ipb.ACTOR_TYPE_UNSPECIFIED}
        )

    @property
    def is_response(self) -> bool:
        """An agent told the customer something (a progress update counts): stops the clock."""
        if self.action == "progress_update":
            return True
        return (
            not self.action
            and self.channel not in _NOT_CUSTOMER_FACING
            and self.direction == ipb.DIRECTION_OUTBOUND
            and self.actor_type == ipb.ACTOR_TYPE_AGENT
        )

    @property
    def agent(self) -> str:
        return self.actor_id if self.actor_type == ipb.ACTOR_TYPE_AGENT else ""

    def document(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> CaseEvent:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in doc.items() if k in fields})


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def _queue(i: ipb.Interaction, action: str) -> str:
    if i.WhichOneof("detail") == "call":
        return i.call.transferred_to or i.call.queue
    detail = i.agent_action
    if action == "handoff":
        return detail.handoff.to_queue
    if action == "transfer":
        return detail.transfer.to_department
    return ""


def case_event(entry: timeline_pb2.TimelineEntry, *, case_status: int = 0) -> CaseEvent:
    """The record of a stored timeline entry (from a notice or read back over gRPC)."""
    i = entry.interaction
    action = ""
    if i.WhichOneof("detail") == "agent_action":
        action = i.agent_action.WhichOneof("action") or ""
    detail = i.agent_action
    return CaseEvent(
        tenant=i.tenant,
        event_id=i.event_id,
        case_id=entry.case_id,
        customer_id=entry.customer_id,
        occurred_at=_seconds(i.occurred_at),
        recorded_at=_seconds(entry.recorded_at),
        channel=i.channel,
        kind=i.kind,
        direction=i.direction,
        actor_type=i.actor.type,
        actor_id=i.actor.id,
        action=action,
        conversation=i.conversation_ref or i.event_id,
        case_status=case_status,
        queue=_queue(i, action),
        csat_score=detail.csat.score if action == "csat" else 0,
        has_comment=action == "csat" and bool(detail.csat.comment.strip()),
        cancellation_reason=(
            detail.cancellation_request.reason if action == "cancellation_request" else 0
        ),
        cancellation_outcome=(
            detail.cancellation_outcome.outcome if action == "cancellation_outcome" else 0
        ),
        follow_up_task=detail.complete_follow_up.task_id if action == "complete_follow_up" else "",
    )


def from_notice(notice: notices_pb2.TimelineUpdated) -> CaseEvent | None:
    """The event a notice announces, when the notice carries its entry; None otherwise."""
    if not notice.HasField("entry"):
        return None
    return case_event(notice.entry, case_status=notice.case_status)
