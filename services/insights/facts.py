"""A case's facts, folded from its events: the clocks and flags every metric is defined on.

Pure: the same events always give the same facts (a rebuild from the log gives the same
figures). docs/insights.md defines each clock; this module is that definition in code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from services.insights.events import CaseEvent
from tsunagu.v1 import interaction_pb2 as ipb

# Events that carry a case forward but are no contact of their own.
_HANDOFF, _ESCALATION, _TRANSFER = "handoff", "escalation", "transfer"


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A transfer's follow-up: due `due_at`; `done_at` is when the customer heard back."""

    due_at: float
    done_at: float | None = None
    event_id: str = ""


@dataclass(slots=True)
class CaseFacts:
    """What the metrics read of one case (times are epoch seconds, durations seconds)."""

    tenant: str
    case_id: str
    customer_id: str
    opened_at: float
    last_event_at: float
    channel: int = 0
    channels: list[int] = field(default_factory=list)
    agent: str = ""
    queue: str = ""
    topic: str = ""
    # Distinct conversations the customer started or continued (a chat session, a call, a
    # thread): the contacts of the case; `contact_times` when each began.
    contacts: int = 0
    contact_times: list[float] = field(default_factory=list)
    first_response_seconds: float | None = None
    response_seconds: list[float] = field(default_factory=list)
    resolved: bool = False
    resolved_at: float | None = None
    resolution_seconds: float | None = None
    reopen_count: int = 0
    handoff: bool = False
    escalated: bool = False
    transferred: bool = False
    follow_ups: list[FollowUp] = field(default_factory=list)
    csat_score: int = 0
    csat_comment: bool = False
    cancellation_reason: int = 0
    cancellation_outcome: int = 0
    # The events a reason or figure can be followed to (evidence links on the timeline).
    evidence: dict[str, str] = field(default_factory=dict)
    event_count: int = 0

    @property
    def first_contact_resolution(self) -> bool:
        """Solved in the one contact: resolved, never reopened, one conversation, nobody else."""
        return (
            self.resolved
            and self.reopen_count == 0
            and self.contacts <= 1
            and not (self.handoff or self.escalated or self.transferred)
        )

    def document(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> CaseFacts:
        fields = cls.__dataclass_fields__
        values = {k: v for k, v in doc.items() if k in fields}
        values["follow_ups"] = [FollowUp(**f) for f in values.get("follow_ups", [])]
        return cls(**values)


def _ordered(events: Iterable[CaseEvent]) -> list[CaseEvent]:
    # By when it happened; commit order breaks ties (a reply and its question in one second).
    unique = {e.event_id: e for e in events}
    return sorted(unique.values(), key=lambda e: (e.occurred_at, e.recorded_at, e.event_id))


def fold_case(events: Iterable[CaseEvent], *, follow_up_due_seconds: float) -> CaseFacts | None:
    """The facts of one case from all its events (any order, duplicates ignored).

    Args:
        events: The case's events.
        follow_up_due_seconds: How long after a transfer its follow-up is due.

    Returns:
        The facts, or None when there are no events.
    """
    ordered = _ordered(events)
    if not ordered:
        return None
    first = ordered[0]
    facts = CaseFacts(
        tenant=first.tenant,
        case_id=first.case_id,
        customer_id=first.customer_id,
        opened_at=first.occurred_at,
        last_event_at=ordered[-1].occurred_at,
        event_count=len(ordered),
    )
    conversations: set[str] = set()
    # The running clocks: when the customer started waiting for an answer (None: answered),
    # when the current episode (the opening, or a reopening) began, and the first answer of
    # the case.
    waiting_since: float | None = first.occurred_at
    episode_start = first.occurred_at
    resolved_for: list[float] = []
    for event in ordered:
        at = event.occurred_at
        _route(facts, event)
        if event.is_customer_contact:
            if event.conversation not in conversations:
                conversations.add(event.conversation)
                facts.contact_times.append(at)
            if facts.resolved and facts.resolved_at is not None and at > facts.resolved_at:
                # A contact after the resolution reopens the case: a new episode, new clocks.
                facts.reopen_count += 1
                facts.resolved = False
                episode_start = at
                facts.evidence.setdefault("reopen", event.event_id)
            if waiting_since is None:
                waiting_since = at
        elif event.is_response:
            if waiting_since is not None and at >= waiting_since:
                wait = at - waiting_since
                facts.response_seconds.append(wait)
                if facts.first_response_seconds is None:
                    facts.first_response_seconds = at - facts.opened_at
                waiting_since = None
            _complete_follow_ups(facts, at, task="")
        _apply_action(facts, event, follow_up_due_seconds=follow_up_due_seconds)
        if event.action == "resolution":
            resolved_for.append(max(0.0, at - episode_start))
            facts.resolved = True
            facts.resolved_at = at
            facts.evidence["resolution"] = event.event_id
            # A question left unanswered by a resolution is not a response time.
            waiting_since = None
    facts.contacts = len(conversations)
    facts.resolution_seconds = sum(resolved_for) if facts.resolved and resolved_for else None
    return facts


def _route(facts: CaseFacts, event: CaseEvent) -> None:
    """Who, where and on which channels the case is handled."""
    facts.customer_id = event.customer_id or facts.customer_id
    if event.channel not in (ipb.CHANNEL_AGENT_DESK, ipb.CHANNEL_UNSPECIFIED):
        if not facts.channel:
            facts.channel = event.channel
        if event.channel not in facts.channels:
            facts.channels.append(event.channel)
    # The first agent to answer or act owns the case's figures (as the timeline's owner).
    if event.agent and not facts.agent and (event.is_response or event.action):
        facts.agent = event.agent
    if event.queue:
        facts.queue = event.queue


def _complete_follow_ups(facts: CaseFacts, at: float, *, task: str) -> None:
    for i, task_ in enumerate(facts.follow_ups):
        if task_.done_at is None and (not task or task_.event_id == task):
            facts.follow_ups[i] = FollowUp(task_.due_at, at, task_.event_id)


def _apply_action(facts: CaseFacts, event: CaseEvent, *, follow_up_due_seconds: float) -> None:
    action = event.action
    if action == _HANDOFF:
        facts.handoff = True
        facts.evidence.setdefault("handoff", event.event_id)
    elif action == _ESCALATION:
        facts.escalated = True
        facts.evidence["escalation"] = event.event_id
    elif action == _TRANSFER:
        facts.transferred = True
        facts.evidence.setdefault("transfer", event.event_id)
        facts.follow_ups.append(
            FollowUp(event.occurred_at + follow_up_due_seconds, None, event.event_id)
        )
    elif action == "complete_follow_up":
        # The task id is the timeline's; a completion without a known task completes the
        # oldest one still open (insights never sees the timeline's task ids).
        open_tasks = [t for t in facts.follow_ups if t.done_at is None]
        if open_tasks:
            _complete_follow_ups(facts, event.occurred_at, task=open_tasks[0].event_id)
    elif action == "csat":
        facts.csat_score = event.csat_score
        facts.csat_comment = event.has_comment
        facts.evidence["csat"] = event.event_id
    elif action == "cancellation_request":
        facts.cancellation_reason = event.cancellation_reason or ipb.CANCELLATION_REASON_OTHER
        facts.cancellation_outcome = ipb.CANCELLATION_OUTCOME_PENDING
        facts.evidence["cancellation_request"] = event.event_id
    elif action == "cancellation_outcome":
        facts.cancellation_outcome = event.cancellation_outcome
        facts.evidence["cancellation_outcome"] = event.event_id
