"""Customers at risk: who may be drifting away, why, and the events that show it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from services.insights.facts import CaseFacts
from services.insights.figures import DAY, Context, overdue, sla_breached
from tsunagu.v1 import interaction_pb2 as ipb

# How far back a reason still counts; an old low score is not today's risk.
LOOKBACK = 30 * DAY
REPEAT_CONTACTS = 3
REPEAT_WINDOW = 7 * DAY


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a customer is at risk; `event_id` and `case_id` are the evidence on the timeline."""

    code: str
    weight: int
    case_id: str
    event_id: str


@dataclass(frozen=True, slots=True)
class AtRisk:
    customer_id: str
    score: int
    reasons: tuple[Reason, ...]


# Weights: an open cancellation request is the customer saying it; the rest are signals.
WEIGHTS = {
    "open_cancellation_request": 5,
    "low_csat": 3,
    "repeated_contacts": 2,
    "repeated_topic": 2,
    "escalation": 2,
    "overdue_follow_up": 2,
    "sla_breach": 1,
}


def risk_signals(c: CaseFacts) -> tuple[object, ...]:
    """What the reasons of a case are read from: when it changes, the at-risk list may."""
    return (
        c.cancellation_outcome,
        c.csat_score,
        c.escalated,
        c.resolved,
        c.contacts,
        c.topic,
        c.first_response_seconds is None,
        tuple(f.done_at is None for f in c.follow_ups),
    )


def _reasons(c: CaseFacts, x: Context) -> Iterable[tuple[str, str]]:
    e = c.evidence
    if c.cancellation_outcome == ipb.CANCELLATION_OUTCOME_PENDING:
        yield "open_cancellation_request", e.get("cancellation_request", "")
    if 0 < c.csat_score <= 2:
        yield "low_csat", e.get("csat", "")
    if c.escalated and not c.resolved:
        yield "escalation", e.get("escalation", "")
    if overdue(c, x) and any(f.done_at is None for f in c.follow_ups):
        yield "overdue_follow_up", e.get("transfer", "")
    if sla_breached(c, x):
        yield "sla_breach", ""


def customers_at_risk(
    cases: Iterable[CaseFacts], x: Context, *, identity: Callable[[str], str], limit: int = 50
) -> list[AtRisk]:
    """Customers with at least one reason, highest score first (then most recent activity).

    Args:
        cases: The tenant's recent cases.
        x: The figure context (now, targets, contacts per identity).
        identity: Resolved identity of a customer id.
        limit: How many to return.
    """
    by_customer: dict[str, list[CaseFacts]] = defaultdict(list)
    for c in cases:
        if x.now - c.last_event_at <= LOOKBACK:
            by_customer[identity(c.customer_id)].append(c)
    ranked = []
    for customer, own in by_customer.items():
        reasons: dict[str, Reason] = {}
        for c in sorted(own, key=lambda c: c.last_event_at, reverse=True):
            for code, event_id in _reasons(c, x):
                reasons.setdefault(code, Reason(code, WEIGHTS[code], c.case_id, event_id))
        recent = [t for t in x.contacts_of.get(customer, ()) if x.now - t <= REPEAT_WINDOW]
        if len(recent) >= REPEAT_CONTACTS:
            latest = max(own, key=lambda c: c.last_event_at)
            reasons["repeated_contacts"] = Reason(
                "repeated_contacts", WEIGHTS["repeated_contacts"], latest.case_id, ""
            )
        topics = [c for c in own if c.topic]
        seen: dict[str, CaseFacts] = {}
        for c in sorted(topics, key=lambda c: c.opened_at):
            if c.topic in seen and "repeated_topic" not in reasons:
                reasons["repeated_topic"] = Reason(
                    "repeated_topic", WEIGHTS["repeated_topic"], c.case_id, ""
                )
            seen[c.topic] = c
        if reasons:
            ordered = tuple(sorted(reasons.values(), key=lambda r: (-r.weight, r.code)))
            last = max(c.last_event_at for c in own)
            ranked.append((sum(r.weight for r in ordered), last, AtRisk(customer, 0, ordered)))
    ranked.sort(key=lambda t: (-t[0], -t[1], t[2].customer_id))
    return [AtRisk(r.customer_id, score, r.reasons) for score, _last, r in ranked[:limit]]
