"""Case events for unit tests: a customer contact, an agent reply, an agent action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.timeline.cases import CaseEvent, CasePolicy

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
TENANT = "acme"
POLICY = CasePolicy(
    attach_window=timedelta(days=7),
    reopen_window=timedelta(hours=72),
    follow_up_due=timedelta(hours=24),
)
_seq = iter(range(10**9))


def _event(minutes: float, **fields: Any) -> CaseEvent:
    return CaseEvent(
        event_id=f"e{next(_seq)}", occurred_at=T0 + timedelta(minutes=minutes), **fields
    )


def contact(channel: str = "chat", *, minutes: float = 0) -> CaseEvent:
    return _event(
        minutes, channel=channel, kind="message", direction="inbound", actor_type="customer"
    )


def reply(channel: str = "chat", *, minutes: float = 0, agent: str = "a1") -> CaseEvent:
    return _event(
        minutes,
        channel=channel,
        kind="message",
        direction="outbound",
        actor_type="agent",
        actor_id=agent,
    )


def action(
    name: str, *, minutes: float = 0, agent: str = "a1", case_id: str = "", **payload: Any
) -> CaseEvent:
    return _event(
        minutes,
        channel="agent_desk",
        kind=name,
        direction="internal",
        actor_type="agent",
        actor_id=agent,
        action=name,
        case_id=case_id,
        payload=payload,
    )
