"""Turns timeline notices into the insights read model: events, case facts, identities."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum

from services.insights.events import CaseEvent, case_event, from_notice
from services.insights.facts import CaseFacts, fold_case, fold_onto
from services.insights.read_backs import ReadBacks, read_backs
from services.insights.risk import risk_signals
from services.insights.solutions import Solutions
from services.insights.store import InsightsStore, SavedCase, StoredMessage
from services.insights.text import customer_text
from services.insights.voice import Voices
from services.insights.words import ReadMany
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1 import notices_pb2

log = logging.getLogger(__name__)

# Told that customers' at-risk signals changed (tenant, customer ids as recorded): once per
# tenant and batch, not per case (a backlog would otherwise send a screen refresh per event).
Changed = Callable[[str, Sequence[str]], Awaitable[None]]


class Applied(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    # No case (merges, notes without a case): identities may change, no figure does.
    NO_CASE = "no_case"
    # The timeline no longer has the entry (a notice of an event it has not kept).
    MISSING = "missing"


# How many times a case another replica saved meanwhile is re-folded and saved again.
_RACES = 5


class LostRaces(RuntimeError):
    """Cases whose facts another replica saved at every try: the batch is applied again."""


# What became of one notice of a batch, or the error that kept it from being applied now.
Outcome = Applied | Exception
# A notice's event with a case, waiting to be recorded: (its place in the batch, the event,
# the interaction it came from).
_Pending = tuple[int, CaseEvent, pb.Interaction]


class Projector:
    """Applies each notice once (by event id); any order of redeliveries gives the same model.

    A batch of notices (what the feed fetched) costs a few calls whatever its size: the
    entries the notices do not carry (every one when the timeline seals its events) are read
    back from the timeline in one bulk call per tenant, the events are recorded in one write,
    the customers' messages kept in one, and each case the batch touched is folded once: its
    new events onto its saved facts when they all come after the last event folded (no
    event is read back), otherwise from all its events (one query per tenant); the facts are
    saved in one write per tenant, each at the version read. So arrival order never changes
    the figures, and a backlog is worked through a batch per round trip, not an event.
    """

    def __init__(
        self,
        store: InsightsStore,
        *,
        read_many: ReadMany,
        follow_up_due_seconds: float,
        changed: Changed | None = None,
        saved: Callable[[CaseFacts], None] | None = None,
        voices: Voices | None = None,
        solutions: Solutions | None = None,
    ) -> None:
        self._store = store
        self._voices = voices
        self._solutions = solutions
        self._saved = saved
        self._read_many = read_many
        self._due = follow_up_due_seconds
        self._changed = changed

    async def apply(self, notices: Sequence[notices_pb2.TimelineUpdated]) -> list[Outcome]:
        """Apply a batch of notices; per notice, in order, its outcome or the error that kept
        it from being applied now. Applying a notice again later is safe: its event is a
        duplicate, and its case is re-folded from all its events (which repairs a fold a failure
        cut short)."""
        outcomes: list[Outcome | None] = [None] * len(notices)
        read = await read_backs(self._read_many, notices)
        pending: list[_Pending] = []
        for place, notice in enumerate(notices):
            try:
                got = await self._identities_and_event(notice, read)
            except Exception as error:  # noqa: BLE001 - this notice only is retried
                outcomes[place] = error
                continue
            if isinstance(got, Applied):
                outcomes[place] = got
            else:
                pending.append((place, *got))
        try:
            fresh = await self._record(pending)
        except Exception as error:  # noqa: BLE001 - the recorded ones are retried, no others
            log.warning("could not record a batch of events: %s", type(error).__name__)
            for place, _event, _interaction in pending:
                outcomes[place] = error
        else:
            for (place, _event, _interaction), new in zip(pending, fresh, strict=True):
                outcomes[place] = Applied.RECORDED if new else Applied.DUPLICATE
        return [o if o is not None else RuntimeError("not applied") for o in outcomes]

    async def _identities_and_event(
        self, notice: notices_pb2.TimelineUpdated, read: ReadBacks
    ) -> Applied | tuple[CaseEvent, pb.Interaction]:
        tenant = notice.tenant
        # Identities first: the figures count a merged customer as its survivor.
        if notice.merged_into:
            await self._store.merge(tenant, [notice.customer_id], notice.merged_into)
        if notice.merged_ids:
            await self._store.merge(tenant, notice.merged_ids, notice.customer_id)
        if notice.split_from:
            await self._store.split(tenant, notice.customer_id)
        event = from_notice(notice)
        interaction = notice.entry.interaction
        if event is None:
            entry = read.entry(notice)
            if entry is None:
                log.warning("the timeline has no entry for an announced event; skipped")
                return Applied.MISSING
            event, interaction = (
                case_event(entry, case_status=notice.case_status),
                entry.interaction,
            )
        if not event.case_id:
            return Applied.NO_CASE
        return event, interaction

    async def _record(self, pending: list[_Pending]) -> list[bool]:
        """Record the events (True: new), keep what the new ones say, fold their cases."""
        fresh = await self._store.record_each([event for _place, event, _i in pending])
        new = [
            (event, i) for (_place, event, i), is_new in zip(pending, fresh, strict=True) if is_new
        ]
        if self._solutions is not None:
            for event, interaction in new:
                note = interaction.agent_action.resolution.summary.strip()
                if event.action == "resolution" and note:
                    await self._solutions.resolved(
                        event.tenant, event.case_id, event.event_id, note, event.occurred_at
                    )
        if self._voices is not None:
            await self._voices.heard(
                [
                    (StoredMessage(e.tenant, e.event_id, e.case_id, e.occurred_at), text)
                    for e, interaction in new
                    if (text := customer_text(interaction))
                ]
            )
        # Duplicates' cases too: a redelivery after a failed fold folds them again (from all
        # their events: the fold a failure cut short may have left out some before them).
        cases: dict[str, dict[str, list[CaseEvent]]] = {}
        doubtful: set[tuple[str, str]] = set()
        for (_place, event, _i), is_new in zip(pending, fresh, strict=True):
            cases.setdefault(event.tenant, {}).setdefault(event.case_id, []).append(event)
            if not is_new:
                doubtful.add((event.tenant, event.case_id))
        for tenant, by_case in cases.items():
            await self._fold(
                tenant,
                {
                    case_id: ([] if (tenant, case_id) in doubtful else new_events)
                    for case_id, new_events in by_case.items()
                },
            )
        return fresh

    async def _fold(self, tenant: str, new_events: dict[str, list[CaseEvent]]) -> None:
        """Fold each case's new events onto its saved facts where that provably gives the
        facts of all its events (`fold_onto`); re-fold the others from all their recorded
        events (none: a duplicate was among them). One query for the saved facts, one for the
        events of the cases re-folded, one write for all, each at the version read.

        A case another replica saved meanwhile (the write lost the race) is re-folded from
        all its events, again at the version read, up to `_RACES` times.

        Raises:
            LostRaces: Some cases lost every try (the batch is applied again later).
        """
        case_ids = sorted(new_events)
        saved = await self._store.saved_cases(tenant, case_ids)
        before = {case_id: s.facts for case_id, s in saved.items()}
        writes: dict[str, tuple[CaseFacts, int | None]] = {}
        again: list[str] = []
        for case_id in case_ids:
            got = saved.get(case_id)
            onto = None
            if got is not None and new_events[case_id]:
                onto = fold_onto(got.facts, new_events[case_id], follow_up_due_seconds=self._due)
            if got is not None and onto is not None:
                writes[case_id] = (onto, got.version)
            else:
                again.append(case_id)
        writes.update(await self._refolded(tenant, again, saved))
        written: list[CaseFacts] = []
        for race in range(1, _RACES + 1):
            lost = await self._store.save_cases_at_versions(list(writes.values()))
            written += [facts for case_id, (facts, _v) in writes.items() if case_id not in lost]
            if not lost or race == _RACES:
                break
            # The versions are read before the events: a save after this read fails ours.
            lost_ids = sorted(lost)
            writes = await self._refolded(
                tenant, lost_ids, await self._store.saved_cases(tenant, lost_ids)
            )
        moved: set[str] = set()
        for facts in written:
            if self._saved is not None:
                self._saved(facts)
            old = before.get(facts.case_id)
            if old is None or risk_signals(old) != risk_signals(facts):
                moved.add(facts.customer_id)
        if self._changed is not None and moved:
            await self._changed(tenant, sorted(moved))
        if lost:
            raise LostRaces(f"{len(lost)} cases saved by another replica at every try")

    async def _refolded(
        self, tenant: str, case_ids: list[str], saved: dict[str, SavedCase]
    ) -> dict[str, tuple[CaseFacts, int | None]]:
        """These cases' facts from all their recorded events, each with the version of the
        facts saved before the events were read (`saved`)."""
        if not case_ids:
            return {}
        events = await self._store.events_of_cases(tenant, case_ids)
        writes = {}
        for case_id in case_ids:
            facts = fold_case(events.get(case_id, []), follow_up_due_seconds=self._due)
            if facts is not None:
                got = saved.get(case_id)
                writes[case_id] = (facts, None if got is None else got.version)
        return writes
