"""Builders of insights case events for the metric definitions' unit tests."""

from __future__ import annotations

import itertools
from typing import Any

from services.insights.events import CaseEvent
from tsunagu.v1 import interaction_pb2 as ipb

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a Thursday: 09:00 in Tokyo
MIN = 60.0
_ids = itertools.count(1)


def event(at_minutes: float, **fields: Any) -> CaseEvent:
    """An event `at_minutes` after T0 on case c1 of customer cust-1 (fields override)."""
    values: dict[str, Any] = {
        "tenant": "t1",
        "event_id": f"e{next(_ids)}",
        "case_id": "c1",
        "customer_id": "cust-1",
        "occurred_at": T0 + at_minutes * MIN,
        "recorded_at": T0 + at_minutes * MIN,
        "channel": ipb.CHANNEL_CHAT,
        "kind": ipb.KIND_MESSAGE,
        "direction": ipb.DIRECTION_INBOUND,
        "actor_type": ipb.ACTOR_TYPE_CUSTOMER,
        "conversation": "chat-1",
    }
    values.update(fields)
    return CaseEvent(**values)


def reply(at_minutes: float, agent: str = "a1", **fields: Any) -> CaseEvent:
    return event(
        at_minutes,
        direction=ipb.DIRECTION_OUTBOUND,
        actor_type=ipb.ACTOR_TYPE_AGENT,
        actor_id=agent,
        **fields,
    )


def action(at_minutes: float, name: str, agent: str = "a1", **fields: Any) -> CaseEvent:
    return event(
        at_minutes,
        channel=ipb.CHANNEL_AGENT_DESK,
        direction=ipb.DIRECTION_INTERNAL,
        actor_type=ipb.ACTOR_TYPE_AGENT,
        actor_id=agent,
        action=name,
        conversation="",
        **fields,
    )
