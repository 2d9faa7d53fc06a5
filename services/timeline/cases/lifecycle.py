"""The case state machine: which case an event belongs to, and the case after the event.

Pure functions over case documents (the form stored in the `cases` collection); nothing here
reads a clock or a store, so the same stream always yields the same cases.

Statuses: `open` (the customer is waiting) ⇄ `pending` (an agent answered; waiting for the
customer), `escalated` (sticky until resolved), `resolved` (reopened to `open` by a customer
contact within the reopen window).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import NoneType
from typing import Any

from services.timeline.cases.events import CaseEvent
from services.timeline.cases.model import CaseDoc
from services.timeline.cases.policy import CasePolicy
from services.timeline.store.documents import Document, aware

_CASE_NAMESPACE = uuid.UUID("8a4f2d6e-1c3b-4e5f-9a7d-3b2c1e0f4a58")
_TASK_NAMESPACE = uuid.UUID("d3e1b7c2-5f4a-4b6e-8c9d-0a1b2c3d4e5f")

OPEN = "open"
PENDING = "pending"
ESCALATED = "escalated"
RESOLVED = "resolved"
STATUSES = (OPEN, PENDING, ESCALATED, RESOLVED)


class CaseRefusedError(ValueError):
    """The event names a case or follow-up task it cannot apply to; it never will."""


def case_id_for(tenant: str, event_id: str) -> str:
    """Deterministic id of the case opened by `event_id`: a replay opens the same cases."""
    return f"case_{uuid.uuid5(_CASE_NAMESPACE, f'{tenant}/{event_id}').hex}"


def task_id_for(tenant: str, event_id: str) -> str:
    """Deterministic id of the follow-up task created by `event_id` (a transfer)."""
    return f"fup_{uuid.uuid5(_TASK_NAMESPACE, f'{tenant}/{event_id}').hex}"


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where an event goes.

    Attributes:
        case_id: The case it belongs to; empty when it belongs to none.
        opens: True when the event opens that case.
        switched_from: The case's previous channel when the event continues the case on
            another customer-facing channel (the channel switch); empty otherwise.
    """

    case_id: str
    opens: bool = False
    switched_from: str = ""


def _at(doc: Mapping[str, Any], key: str) -> datetime | None:
    value = doc.get(key)
    return aware(value) if isinstance(value, datetime) else None


def _latest(cases: Iterable[CaseDoc], key: str) -> CaseDoc | None:
    dated = [(when, c["_id"], c) for c in cases if (when := _at(c, key)) is not None]
    return max(dated, key=lambda t: (t[0], t[1]))[2] if dated else None


def task_case(cases: Iterable[CaseDoc], task_id: str) -> CaseDoc | None:
    """The case holding follow-up task `task_id`, if any of `cases` does."""
    return next(
        (c for c in cases if any(t["id"] == task_id for t in c.get("follow_ups", []))), None
    )


def assign(
    tenant: str,
    cases: Sequence[CaseDoc],
    event: CaseEvent,
    policy: CasePolicy,
    *,
    requested: CaseDoc | None = None,
) -> Assignment:
    """Decide which case `event` belongs to.

    Args:
        tenant: The event's tenant (part of a new case's id).
        cases: The customer's known cases (at least the open ones and the latest resolved).
        event: The event.
        policy: The tenant's windows.
        requested: The case an agent action names, already checked to be the customer's.

    Returns:
        The case the event attaches to, or a new case it opens, or no case.

    Raises:
        CaseRefusedError: A follow-up completion names a task none of the cases holds.
    """
    target: CaseDoc | None
    if requested is not None:
        target = requested
    elif event.action == "complete_follow_up":
        target = task_case(cases, str(event.payload.get("task_id", "")))
    else:
        target = _current_case(cases, event, policy)
    task_id = str(event.payload.get("task_id", ""))
    if event.action == "complete_follow_up" and (
        target is None or task_case([target], task_id) is None
    ):
        raise CaseRefusedError(f"no follow-up task {event.payload.get('task_id')!r} here")
    if target is None:
        if event.is_customer_contact or event.is_agent_action:
            return Assignment(case_id_for(tenant, event.event_id), opens=True)
        # Outbound or internal channel traffic with no case around (a campaign SMS, say)
        # stays on the timeline without opening a case.
        return Assignment("")
    last_channel = target.get("last_channel", "")
    switched = (
        last_channel
        if event.customer_facing and last_channel and last_channel != event.channel
        else ""
    )
    return Assignment(target["_id"], switched_from=switched)


def is_open(case: CaseDoc) -> bool:
    """Whether the case is not resolved (open, pending or escalated)."""
    return case["status"] != RESOLVED


def decided_by_open_case(open_case: CaseDoc, event: CaseEvent, policy: CasePolicy) -> bool:
    """Whether `assign` puts `event` on the customer's open case whatever their other cases.

    True when the event names no case and no task, and attaches to the latest open case: an
    agent's action, or a contact within the attach window. Then the customer's other cases
    (resolved ones to reopen, tasks to complete) do not change the answer, so the open case
    alone is enough to assign it. `open_case` must be the customer's most recently active
    open case (its profile's `open_case_id`).
    """
    if event.action == "complete_follow_up" or not is_open(open_case):
        return False
    return _current_case([open_case], event, policy) is not None


def _current_case(cases: Sequence[CaseDoc], event: CaseEvent, policy: CasePolicy) -> CaseDoc | None:
    """The case an event without an explicit case goes to, or None for a new one."""
    at = event.occurred_at
    open_case = _latest((c for c in cases if c["status"] != RESOLVED), "updated_at")
    if open_case is not None:
        idle = at - (_at(open_case, "updated_at") or at)
        # Agents act on the case they see, however old; a customer coming back after the
        # attach window is a new issue.
        if event.is_agent_action or idle <= policy.attach_window:
            return open_case
    resolved = _latest((c for c in cases if c["status"] == RESOLVED), "resolved_at")
    if resolved is not None:
        since = at - (_at(resolved, "resolved_at") or at)
        if since <= policy.reopen_window:
            return resolved
    return None


def new_case(*, tenant: str, case_id: str, customer_id: str, event: CaseEvent) -> CaseDoc:
    """An empty case opened by `event` (apply the event to it next)."""
    at = event.occurred_at
    return {
        "_id": case_id,
        "tenant": tenant,
        "version": 0,
        "customer_id": customer_id,
        # Where the case was opened: a split of a merge moves it back there.
        "origin_customer_id": customer_id,
        "opened_by_event_id": event.event_id,
        "status": OPEN,
        "owner_agent_id": "",
        "queue": "",
        "department": "",
        "escalation_level": 0,
        "escalation_reason": "",
        "channels": [],
        "last_channel": "",
        "last_channel_at": None,
        "opened_at": at,
        "updated_at": at,
        "last_customer_at": None,
        "last_response_at": None,
        "first_response_at": None,
        "first_response_seconds": None,
        "resolved_at": None,
        "resolution_seconds": None,
        "resolution_summary": "",
        "reopen_count": 0,
        "tags": [],
        "csat": None,
        "cancellation_request": None,
        "cancellation_outcome": "",
        "follow_ups": [],
        "next_follow_up_due": None,
        "last_handoff": None,
        "interaction_count": 0,
    }


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    """A clock reading: never negative, even when events arrived out of order."""
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _reopen(case: CaseDoc) -> None:
    case["reopen_count"] = case.get("reopen_count", 0) + 1
    case["resolved_at"] = None
    case["resolution_seconds"] = None


def _complete_tasks(case: CaseDoc, event: CaseEvent, *, task_id: str = "") -> None:
    at = event.occurred_at
    for task in case["follow_ups"]:
        if task["done"]:
            continue
        created = _at(task, "created_at") or at
        if (task_id and task["id"] == task_id) or (not task_id and created <= at):
            task["done"], task["done_at"] = True, at
            task["done_by_event_id"] = event.event_id


def _settle_open_or_pending(case: CaseDoc) -> None:
    """Open while the customer spoke last, pending once an agent answered after that."""
    if case["status"] not in {OPEN, PENDING}:
        return
    answered = _at(case, "last_response_at")
    asked = _at(case, "last_customer_at")
    case["status"] = PENDING if answered and (asked is None or answered >= asked) else OPEN


def _handoff(case: CaseDoc, event: CaseEvent, _policy: CasePolicy) -> None:
    payload, at = event.payload, event.occurred_at
    if payload.get("to_agent"):
        case["owner_agent_id"] = payload["to_agent"]
    if payload.get("to_queue"):
        case["queue"] = payload["to_queue"]
    previous = case.get("last_handoff")
    if previous is None or at >= (_at(previous, "occurred_at") or at):
        case["last_handoff"] = {
            **payload,
            "event_id": event.event_id,
            "agent_id": event.actor_id,
            "occurred_at": at,
        }


def _escalation(case: CaseDoc, event: CaseEvent, _policy: CasePolicy) -> None:
    requested = int(event.payload.get("level", 0))
    level = case["escalation_level"]
    # Escalation raises the level: to the one asked for, or one up when none is given.
    case["escalation_level"] = max(level, requested if requested > 0 else level + 1)
    case["escalation_reason"] = event.payload.get("reason", "")
    if case["status"] == RESOLVED:
        _reopen(case)
    case["status"] = ESCALATED


def _transfer(case: CaseDoc, event: CaseEvent, policy: CasePolicy) -> None:
    payload, at = event.payload, event.occurred_at
    case["department"] = payload.get("to_department", "") or case["department"]
    task_id = task_id_for(case["tenant"], event.event_id)
    if any(t["id"] == task_id for t in case["follow_ups"]):
        return
    case["follow_ups"].append(
        {
            "id": task_id,
            # The transferring agent owes the customer a follow-up.
            "agent_id": event.actor_id,
            "reason": payload.get("reason") or f"transferred to {payload.get('to_department')}",
            "created_by_event_id": event.event_id,
            "created_at": at,
            "due_at": at + policy.follow_up_due,
            "done": False,
            "done_at": None,
            "done_by_event_id": "",
        }
    )


def _resolution(case: CaseDoc, event: CaseEvent, _policy: CasePolicy) -> None:
    at = event.occurred_at
    resolved_at = _at(case, "resolved_at")
    if case["status"] != RESOLVED or resolved_at is None or at > resolved_at:
        case["status"] = RESOLVED
        case["resolved_at"] = at
        case["resolution_seconds"] = _seconds(_at(case, "opened_at"), at)
        case["resolution_summary"] = event.payload.get("summary", "")
    _complete_tasks(case, event)


def _tag(case: CaseDoc, event: CaseEvent, _policy: CasePolicy) -> None:
    case["tags"] = list(dict.fromkeys([*case["tags"], *event.payload.get("tags", [])]))


def _csat(case: CaseDoc, event: CaseEvent, _policy: CasePolicy) -> None:
    payload = event.payload
    case["csat"] = {"score": payload.get("score", 0), "comment": payload.get("comment", "")}


def _cancellation_request(case: CaseDoc, event: CaseEvent, _policy: CasePolicy) -> None:
    case["cancellation_request"] = dict(event.payload)


def _cancellation_outcome(case: CaseDoc, event: CaseEvent, _policy: CasePolicy) -> None:
    case["cancellation_outcome"] = event.payload.get("outcome", "unspecified")


def _complete_follow_up(case: CaseDoc, event: CaseEvent, _policy: CasePolicy) -> None:
    _complete_tasks(case, event, task_id=str(event.payload.get("task_id", "")))


_ACTIONS: dict[str, Callable[[CaseDoc, CaseEvent, CasePolicy], None]] = {
    "handoff": _handoff,
    "escalation": _escalation,
    "transfer": _transfer,
    "resolution": _resolution,
    "tag": _tag,
    "csat": _csat,
    "cancellation_request": _cancellation_request,
    "cancellation_outcome": _cancellation_outcome,
    "complete_follow_up": _complete_follow_up,
}


# Values a stored document holds that nothing changes in place: a copy shares them.
_IMMUTABLE = (str, int, float, NoneType, datetime)


def _copied(value: Any) -> Any:
    """A deep copy of a stored document: its dicts and lists copied, immutable values shared.

    What `copy.deepcopy` gives for such a document (anything else still goes through it),
    in a quarter of the time: a batch applies an event to a case copy per interaction.
    """
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    if isinstance(value, _IMMUTABLE):
        return value
    return copy.deepcopy(value)


def apply_event(case: CaseDoc, event: CaseEvent, policy: CasePolicy) -> CaseDoc:
    """The case after one more event (the input is not changed).

    Args:
        case: The case the event was assigned to (a `new_case` for the event opening it).
        event: The event.
        policy: The tenant's windows (the follow-up due time).

    Returns:
        The updated case document.
    """
    updated: CaseDoc = _copied(case)
    at = event.occurred_at
    updated["interaction_count"] = updated.get("interaction_count", 0) + 1
    updated["updated_at"] = max(_at(updated, "updated_at") or at, at)
    if event.customer_facing:
        if event.channel not in updated["channels"]:
            updated["channels"].append(event.channel)
        last = _at(updated, "last_channel_at")
        if last is None or at >= last:
            updated["last_channel"] = event.channel
            updated["last_channel_at"] = at
    if event.actor_type == "agent" and event.actor_id and not updated["owner_agent_id"]:
        updated["owner_agent_id"] = event.actor_id

    if event.is_customer_contact:
        updated["last_customer_at"] = max(_at(updated, "last_customer_at") or at, at)
        resolved_at = _at(updated, "resolved_at")
        # A message written before the resolution that arrives late does not reopen.
        if updated["status"] == RESOLVED and resolved_at is not None and at > resolved_at:
            _reopen(updated)
            updated["status"] = OPEN
    if event.is_response:
        updated["last_response_at"] = max(_at(updated, "last_response_at") or at, at)
        opened = _at(updated, "opened_at") or at
        first = _at(updated, "first_response_at")
        if at >= opened and (first is None or at < first):
            updated["first_response_at"] = at
            updated["first_response_seconds"] = _seconds(opened, at)
        _complete_tasks(updated, event)
    if event.action in _ACTIONS:
        _ACTIONS[event.action](updated, event, policy)
    _settle_open_or_pending(updated)
    pending_due = [
        due for t in updated["follow_ups"] if not t["done"] and (due := _at(t, "due_at"))
    ]
    updated["next_follow_up_due"] = min(pending_due) if pending_due else None
    return updated


def fold(
    *, tenant: str, case_id: str, customer_id: str, events: Sequence[CaseEvent], policy: CasePolicy
) -> CaseDoc | None:
    """A case rebuilt from its events (in the order given); None when there are none."""
    if not events:
        return None
    case = new_case(tenant=tenant, case_id=case_id, customer_id=customer_id, event=events[0])
    for event in events:
        case = apply_event(case, event, policy)
    return case


def open_case_after(
    current: str, touched: Iterable[CaseDoc], *, current_case: CaseDoc | None = None
) -> str | None:
    """The customer's open case after `touched` cases changed; None: look it up in the store.

    The open case is the customer's most recently active one that is not resolved, the one
    `assign` sends a new contact to (and the one a batch reads for it, `CaseKeeper.preload`).

    Args:
        current: The customer's `open_case_id` before the change ("" for none).
        touched: The customer's cases as they are now, of those that changed.
        current_case: The case `current` names, as it is now, when the caller has it. A
            touched case that stays open replaces `current` only if it is the more recently
            active of the two (an agent's action on an older open case, in a past time, does
            not); without it, that takes the store.
    """
    touched = list(touched)
    still_open = _latest((c for c in touched if c["status"] != RESOLVED), "updated_at")
    if still_open is not None:
        if current and all(c["_id"] != current for c in touched):
            if current_case is None or current_case["_id"] != current:
                return None
            if is_open(current_case) and _latest([still_open, current_case], "updated_at") is (
                current_case
            ):
                return current
        return str(still_open["_id"])
    if current and any(c["_id"] == current for c in touched):
        return None  # the open case was resolved: another may still be open
    return current


def remark_of(event: CaseEvent, case_id: str) -> Document | None:
    """What the agent said (a note or a handoff), for the top of the customer's view."""
    if event.action == "note":
        text, questions = str(event.payload.get("text", "")), []
    elif event.action == "handoff":
        text = str(event.payload.get("summary", ""))
        questions = list(event.payload.get("open_questions", []))
    else:
        return None
    return {
        "event_id": event.event_id,
        "kind": event.kind,
        "agent": {"id": event.actor_id, "display_name": event.actor_name, "type": event.actor_type},
        "text": text,
        "open_questions": questions,
        "occurred_at": event.occurred_at,
        "case_id": case_id,
    }
