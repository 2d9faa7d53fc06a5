"""A case's facts, folded from its events: the clocks and flags every metric is defined on.

Pure: the same events always give the same facts (a rebuild from the log gives the same
figures). docs/insights.md defines each clock; this module is that definition in code.
"""

from __future__ import annotations

import copy
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
class FoldState:
    """Where the fold of a case's events stands: what folding later events onto the facts
    needs besides the facts themselves (the running clocks `fold_case` keeps).

    Attributes:
        last_occurred_at: With `last_recorded_at` and `last_event_id`, the fold order's key
            (`_key`) of the last event folded: when it happened, when the timeline recorded
            it, its id. A new event is folded on only if its key is greater.
        waiting_since: When the customer started waiting for an answer (None: answered).
        episode_start: When the current episode (the opening, or a reopening) began.
        conversations: The conversations seen so far (the contacts).
        resolved_for: How long each resolved episode took.
        follow_up_due_seconds: The setting the follow-ups were folded with.
    """

    last_occurred_at: float
    last_recorded_at: float
    last_event_id: str
    waiting_since: float | None
    episode_start: float
    follow_up_due_seconds: float
    conversations: list[str] = field(default_factory=list)
    resolved_for: list[float] = field(default_factory=list)

    @property
    def last_key(self) -> tuple[float, float, str]:
        return (self.last_occurred_at, self.last_recorded_at, self.last_event_id)


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
    # What folding later events onto these facts needs (None: facts saved before it was kept,
    # which only a fold of all the case's events brings up to date).
    fold: FoldState | None = None

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
        state = values.get("fold")
        values["fold"] = None if state is None else FoldState(**state)
        return cls(**values)


def _key(event: CaseEvent) -> tuple[float, float, str]:
    # By when it happened; commit order breaks ties (a reply and its question in one second).
    return (event.occurred_at, event.recorded_at, event.event_id)


def _ordered(events: Iterable[CaseEvent]) -> list[CaseEvent]:
    unique = {e.event_id: e for e in events}
    return sorted(unique.values(), key=_key)


def fold_case(events: Iterable[CaseEvent], *, follow_up_due_seconds: float) -> CaseFacts | None:
    """The facts of one case from all its events (any order, duplicates ignored).

    The definition every figure rests on: the facts of the case's first event, and each event
    folded onto them in order (`fold_onto` goes on from saved facts the same way).

    Args:
        events: The case's events.
        follow_up_due_seconds: How long after a transfer its follow-up is due.

    Returns:
        The facts, or None when there are no events.
    """
    ordered = _ordered(events)
    if not ordered:
        return None
    facts, state = _start(ordered[0], follow_up_due_seconds=follow_up_due_seconds)
    return _fold(facts, state, ordered)


def fold_onto(
    facts: CaseFacts, events: Iterable[CaseEvent], *, follow_up_due_seconds: float
) -> CaseFacts | None:
    """`facts` with later events folded on: the same facts `fold_case` gives over all the
    case's events, when that can be known from the facts and the new events alone.

    That is when the facts carry their fold's state (with the same follow-up setting) and
    every new event comes after the last one folded, in the fold's order, ids all distinct.
    The caller vouches for the rest: `facts` are the fold of every event of the case before
    these (none recorded but left out), and none of `events` was folded before.

    Returns:
        New facts (`facts` is left as it was), or None when only a fold of all the case's
        events can tell (an event older than the last folded one, old facts, ...).
    """
    state = facts.fold
    ordered = sorted(events, key=_key)
    if (
        state is None
        or state.follow_up_due_seconds != follow_up_due_seconds
        or not ordered
        or len({e.event_id for e in ordered}) != len(ordered)
        or _key(ordered[0]) <= state.last_key
        or any(e.tenant != facts.tenant or e.case_id != facts.case_id for e in ordered)
    ):
        return None
    going_on = copy.deepcopy(facts)
    going_state = going_on.fold
    return None if going_state is None else _fold(going_on, going_state, ordered)


def _start(first: CaseEvent, *, follow_up_due_seconds: float) -> tuple[CaseFacts, FoldState]:
    """The facts before any event is folded: a case opened by its first event."""
    state = FoldState(
        last_occurred_at=first.occurred_at,
        last_recorded_at=first.recorded_at,
        last_event_id=first.event_id,
        # The customer waits from the opening; the first episode begins there.
        waiting_since=first.occurred_at,
        episode_start=first.occurred_at,
        follow_up_due_seconds=follow_up_due_seconds,
    )
    facts = CaseFacts(
        tenant=first.tenant,
        case_id=first.case_id,
        customer_id=first.customer_id,
        opened_at=first.occurred_at,
        last_event_at=first.occurred_at,
        fold=state,
    )
    return facts, state


def _fold(facts: CaseFacts, state: FoldState, ordered: list[CaseEvent]) -> CaseFacts:
    """Fold events (in the fold's order) onto the facts and their state, in place."""
    for event in ordered:
        _step(facts, state, event)
        facts.event_count += 1
        facts.last_event_at = event.occurred_at
        state.last_occurred_at, state.last_recorded_at, state.last_event_id = _key(event)
    # What is derived from the running state, as of the last event.
    facts.contacts = len(state.conversations)
    resolved_for = state.resolved_for
    facts.resolution_seconds = sum(resolved_for) if facts.resolved and resolved_for else None
    return facts


def _step(facts: CaseFacts, state: FoldState, event: CaseEvent) -> None:
    """One event folded onto the facts: the clocks every metric is defined on."""
    at = event.occurred_at
    _route(facts, event)
    if event.is_customer_contact:
        if event.conversation not in state.conversations:
            state.conversations.append(event.conversation)
            facts.contact_times.append(at)
        if facts.resolved and facts.resolved_at is not None and at > facts.resolved_at:
            # A contact after the resolution reopens the case: a new episode, new clocks.
            facts.reopen_count += 1
            facts.resolved = False
            state.episode_start = at
            facts.evidence.setdefault("reopen", event.event_id)
        if state.waiting_since is None:
            state.waiting_since = at
    elif event.is_response:
        waiting_since = state.waiting_since
        if waiting_since is not None and at >= waiting_since:
            wait = at - waiting_since
            facts.response_seconds.append(wait)
            if facts.first_response_seconds is None:
                facts.first_response_seconds = at - facts.opened_at
            state.waiting_since = None
        _complete_follow_ups(facts, at, task="")
    _apply_action(facts, event, follow_up_due_seconds=state.follow_up_due_seconds)
    if event.action == "resolution":
        state.resolved_for.append(max(0.0, at - state.episode_start))
        facts.resolved = True
        facts.resolved_at = at
        facts.evidence["resolution"] = event.event_id
        # A question left unanswered by a resolution is not a response time.
        state.waiting_since = None


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
