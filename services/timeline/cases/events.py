"""What the case logic reads from one interaction: its time, channel, sender and agent action."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.timeline.store.documents import (
    DIRECTION_TOKENS,
    KIND_TOKENS,
    channel_token,
    enum_tokens,
)
from tsunagu.v1 import interaction_pb2

ACTOR_TOKENS = enum_tokens(interaction_pb2.ActorType.DESCRIPTOR, "ACTOR_TYPE_")
CANCELLATION_REASON_TOKENS = enum_tokens(
    interaction_pb2.CancellationReason.DESCRIPTOR, "CANCELLATION_REASON_"
)
CANCELLATION_OUTCOME_TOKENS = enum_tokens(
    interaction_pb2.CancellationOutcome.DESCRIPTOR, "CANCELLATION_OUTCOME_"
)
# Channels on which the customer is reached; agent-desk actions happen beside them.
NOT_CUSTOMER_FACING = frozenset({"agent_desk", "unspecified"})
# Agent actions that are not about cases at all (identity housekeeping).
IDENTITY_ACTIONS = frozenset({"merge_customers", "split_merge", "dismiss_merge_suggestion"})


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One interaction as the case logic sees it.

    Attributes:
        event_id: The interaction's event id (ids derived from it are deterministic).
        occurred_at: When it happened (UTC); every ordering decision uses this.
        channel: Channel token ("chat", "voice", ..., "agent_desk").
        kind: Kind token ("message", "handoff", ...).
        direction: "inbound", "outbound", "internal" or "unspecified".
        actor_type: "customer", "agent", "bot", "system" or "unspecified".
        actor_id: The agent (or bot) id; empty for customers.
        actor_name: The actor's display name.
        action: The agent action's name ("note", "handoff", ...); empty for channel events.
        case_id: The case an agent action names; empty when it names none.
        payload: The agent action's content, in the form stored on the case.
    """

    event_id: str
    occurred_at: datetime
    channel: str
    kind: str = "unspecified"
    direction: str = "unspecified"
    actor_type: str = "unspecified"
    actor_id: str = ""
    actor_name: str = ""
    action: str = ""
    case_id: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def customer_facing(self) -> bool:
        return self.channel not in NOT_CUSTOMER_FACING

    @property
    def is_agent_action(self) -> bool:
        return bool(self.action)

    @property
    def is_customer_contact(self) -> bool:
        """The customer reached out (or answered): what opens, attaches to and reopens cases."""
        return (
            not self.action
            and self.customer_facing
            and self.direction == "inbound"
            and self.actor_type in {"customer", "unspecified"}
        )

    @property
    def is_response(self) -> bool:
        """An agent told the customer something: stops the first-response clock."""
        if self.action == "progress_update":
            return True
        return (
            not self.action
            and self.customer_facing
            and self.direction == "outbound"
            and self.actor_type == "agent"
        )


def _handoff(d: interaction_pb2.AgentActionDetail) -> dict[str, Any]:
    h = d.handoff
    return {
        "to_channel": channel_token(h.to_channel) if h.to_channel else "",
        "to_queue": h.to_queue,
        "to_agent": h.to_agent,
        "summary": h.summary,
        "open_questions": list(h.open_questions),
    }


def _cancellation_request(d: interaction_pb2.AgentActionDetail) -> dict[str, Any]:
    request = d.cancellation_request
    return {
        "reason": CANCELLATION_REASON_TOKENS.get(request.reason, "unspecified"),
        "reason_detail": request.reason_detail,
    }


def _cancellation_outcome(d: interaction_pb2.AgentActionDetail) -> dict[str, Any]:
    outcome = d.cancellation_outcome
    return {
        "outcome": CANCELLATION_OUTCOME_TOKENS.get(outcome.outcome, "unspecified"),
        "note": outcome.note,
    }


# Each agent action as a plain document: tokens for enums, lists for repeated fields.
_PAYLOADS: dict[str, Callable[[interaction_pb2.AgentActionDetail], dict[str, Any]]] = {
    "note": lambda d: {"text": d.note.text},
    "handoff": _handoff,
    "escalation": lambda d: {"level": d.escalation.level, "reason": d.escalation.reason},
    "progress_update": lambda d: {"message": d.progress_update.message},
    "transfer": lambda d: {
        "to_department": d.transfer.to_department,
        "reason": d.transfer.reason,
    },
    "resolution": lambda d: {"summary": d.resolution.summary},
    "tag": lambda d: {"tags": [t.strip() for t in d.tag.tags if t.strip()]},
    "csat": lambda d: {"score": d.csat.score, "comment": d.csat.comment},
    "cancellation_request": _cancellation_request,
    "cancellation_outcome": _cancellation_outcome,
    "complete_follow_up": lambda d: {
        "task_id": d.complete_follow_up.task_id,
        "note": d.complete_follow_up.note,
    },
}


def case_event_from(
    interaction: interaction_pb2.Interaction, occurred_at: datetime
) -> CaseEvent | None:
    """The case view of an interaction; None for events that never touch a case."""
    action = ""
    case_id = ""
    payload: dict[str, Any] = {}
    if interaction.WhichOneof("detail") == "agent_action":
        detail = interaction.agent_action
        action = detail.WhichOneof("action") or ""
        if not action or action in IDENTITY_ACTIONS:
            return None
        case_id = detail.case_id
        payload = _PAYLOADS[action](detail) if action in _PAYLOADS else {}
    return CaseEvent(
        event_id=interaction.event_id,
        occurred_at=occurred_at,
        channel=channel_token(interaction.channel),
        kind=KIND_TOKENS.get(interaction.kind, "unspecified"),
        direction=DIRECTION_TOKENS.get(interaction.direction, "unspecified"),
        actor_type=ACTOR_TOKENS.get(interaction.actor.type, "unspecified"),
        actor_id=interaction.actor.id,
        actor_name=interaction.actor.display_name,
        action=action,
        case_id=case_id,
        payload=payload,
    )
