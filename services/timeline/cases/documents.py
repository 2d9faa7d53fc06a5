"""Conversions from stored case documents to the `tsunagu.v1.Case` contract."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration

from services.timeline.cases.events import CANCELLATION_OUTCOME_TOKENS, CANCELLATION_REASON_TOKENS
from services.timeline.cases.model import CaseDoc
from services.timeline.store.documents import by_token, enum_tokens, to_timestamp
from tsunagu.bus.subjects import CHANNELS_BY_TOKEN
from tsunagu.v1 import interaction_pb2, timeline_pb2

CASE_STATUS_TOKENS = {
    number: token
    for number, token in enum_tokens(timeline_pb2.CaseStatus.DESCRIPTOR, "CASE_STATUS_").items()
    if number != timeline_pb2.CASE_STATUS_UNSPECIFIED
}
CASE_STATUSES_BY_TOKEN = by_token(CASE_STATUS_TOKENS)
_REASONS_BY_TOKEN = by_token(CANCELLATION_REASON_TOKENS)
_OUTCOMES_BY_TOKEN = by_token(CANCELLATION_OUTCOME_TOKENS)


def _channel(token: str) -> interaction_pb2.Channel.ValueType:
    return CHANNELS_BY_TOKEN.get(token, 0)  # type: ignore[return-value]


def _duration(seconds: float | None) -> Duration | None:
    if seconds is None:
        return None
    duration = Duration()
    duration.FromTimedelta(timedelta(seconds=seconds))
    return duration


def _set_time(target: object, field_name: str, value: object) -> None:
    if isinstance(value, datetime):
        getattr(target, field_name).CopyFrom(to_timestamp(value))


def handoff_to_proto(doc: Mapping[str, Any]) -> interaction_pb2.HandoffAction:
    return interaction_pb2.HandoffAction(
        to_channel=_channel(doc.get("to_channel", "")),
        to_queue=doc.get("to_queue", ""),
        to_agent=doc.get("to_agent", ""),
        summary=doc.get("summary", ""),
        open_questions=doc.get("open_questions", []),
    )


def case_to_proto(doc: CaseDoc) -> timeline_pb2.Case:
    """The `Case` message of a stored case document."""
    case = timeline_pb2.Case(
        id=doc["_id"],
        tenant=doc["tenant"],
        customer_id=doc["customer_id"],
        status=CASE_STATUSES_BY_TOKEN.get(doc.get("status", ""), 0),  # type: ignore[arg-type]
        owner_agent_id=doc.get("owner_agent_id", ""),
        queue=doc.get("queue", ""),
        department=doc.get("department", ""),
        escalation_level=doc.get("escalation_level", 0),
        escalation_reason=doc.get("escalation_reason", ""),
        channels=[_channel(c) for c in doc.get("channels", [])],
        last_channel=_channel(doc.get("last_channel", "")),
        reopen_count=doc.get("reopen_count", 0),
        tags=doc.get("tags", []),
        interaction_count=doc.get("interaction_count", 0),
        resolution_summary=doc.get("resolution_summary", ""),
        cancellation_outcome=_OUTCOMES_BY_TOKEN.get(  # type: ignore[arg-type]
            doc.get("cancellation_outcome") or "unspecified", 0
        ),
    )
    for name in ("opened_at", "updated_at", "first_response_at", "resolved_at"):
        _set_time(case, name, doc.get(name))
    if (first := _duration(doc.get("first_response_seconds"))) is not None:
        case.first_response_time.CopyFrom(first)
    if (resolution := _duration(doc.get("resolution_seconds"))) is not None:
        case.time_to_resolution.CopyFrom(resolution)
    if csat := doc.get("csat"):
        case.csat.CopyFrom(
            interaction_pb2.CsatResponse(
                score=csat.get("score", 0), comment=csat.get("comment", "")
            )
        )
    if request := doc.get("cancellation_request"):
        case.cancellation_request.CopyFrom(
            interaction_pb2.CancellationRequestAction(
                reason=_REASONS_BY_TOKEN.get(request.get("reason", ""), 0),  # type: ignore[arg-type]
                reason_detail=request.get("reason_detail", ""),
            )
        )
    if handoff := doc.get("last_handoff"):
        case.last_handoff.CopyFrom(handoff_to_proto(handoff))
    for task in doc.get("follow_ups", []):
        follow_up = timeline_pb2.FollowUpTask(
            id=task["id"],
            case_id=doc["_id"],
            agent_id=task.get("agent_id", ""),
            reason=task.get("reason", ""),
            created_by_event_id=task.get("created_by_event_id", ""),
            done=task.get("done", False),
            done_by_event_id=task.get("done_by_event_id", ""),
        )
        for name in ("created_at", "due_at", "done_at"):
            _set_time(follow_up, name, task.get(name))
        case.follow_ups.append(follow_up)
    return case
