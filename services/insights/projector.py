"""Turns timeline notices into the insights read model: events, case facts, identities."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum

from services.insights.events import CaseEvent, case_event, from_notice
from services.insights.facts import CaseFacts, fold_case
from services.insights.read_backs import ReadBacks, read_backs
from services.insights.risk import risk_signals
from services.insights.solutions import Solutions
from services.insights.store import InsightsStore, StoredMessage
from services.insights.text import customer_text
from services.insights.voice import Voices
from services.insights.words import ReadMany
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1 import notices_pb2

log = logging.getLogger(__name__)

# Told that a customer's at-risk signals changed (tenant, customer id as recorded).
Changed = Callable[[str, str], Awaitable[None]]


class Applied(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    # No case (merges, notes without a case): identities may change, no figure does.
    NO_CASE = "no_case"
    # The timeline no longer has the entry (a notice of an event it has not kept).
    MISSING = "missing"


class Projector:
    """Applies each notice once (by event id); any order of redeliveries gives the same model.

    Notices sent without their entry (over the notice size limit, or every notice when the
    timeline seals its events) are read back from the timeline a batch at a time
    (`read_back`, one bulk call per tenant), then applied one by one (`apply`).
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

    async def read_back(self, notices: Sequence[notices_pb2.TimelineUpdated]) -> ReadBacks:
        """The entries of those of `notices` that carry none, in one bulk read per tenant."""
        return await read_backs(self._read_many, notices)

    async def apply(
        self, notice: notices_pb2.TimelineUpdated, *, read: ReadBacks | None = None
    ) -> Applied:
        """Apply one notice; its entry from `read` when it carries none (read now if None).

        Raises:
            Exception: The notice could not be applied now (its entry could not be read, the
                store failed); applying it again later is safe.
        """
        tenant = notice.tenant
        # Identities first: the figures count a merged customer as its survivor.
        if notice.merged_into:
            await self._store.merge(tenant, [notice.customer_id], notice.merged_into)
        if notice.merged_ids:
            await self._store.merge(tenant, notice.merged_ids, notice.customer_id)
        if notice.split_from:
            await self._store.split(tenant, notice.customer_id)
        event, interaction = await self._event(notice, read)
        if event is None or interaction is None:
            return Applied.MISSING
        if not event.case_id:
            return Applied.NO_CASE
        if not await self._store.record(event):
            return Applied.DUPLICATE
        if self._solutions is not None and event.action == "resolution":
            note = interaction.agent_action.resolution.summary.strip()
            if note:
                await self._solutions.resolved(
                    tenant, event.case_id, event.event_id, note, event.occurred_at
                )
        if self._voices is not None and (text := customer_text(interaction)):
            await self._voices.heard(
                StoredMessage(tenant, event.event_id, event.case_id, event.occurred_at), text
            )
        before = await self._store.case(tenant, event.case_id)
        after = await self.refold(tenant, event.case_id)
        moved = after is not None and (
            before is None or risk_signals(before) != risk_signals(after)
        )
        if self._changed is not None and after is not None and moved:
            await self._changed(tenant, after.customer_id)
        return Applied.RECORDED

    async def refold(self, tenant: str, case_id: str) -> CaseFacts | None:
        """Recompute one case's facts from all its recorded events; the new facts."""
        facts = fold_case(
            await self._store.case_events(tenant, case_id), follow_up_due_seconds=self._due
        )
        if facts is not None:
            await self._store.save_case(facts)
            if self._saved is not None:
                self._saved(facts)
        return facts

    async def _event(
        self, notice: notices_pb2.TimelineUpdated, read: ReadBacks | None
    ) -> tuple[CaseEvent | None, pb.Interaction | None]:
        event = from_notice(notice)
        if event is not None:
            return event, notice.entry.interaction
        entry = (read or await self.read_back([notice])).entry(notice)
        if entry is None:
            log.warning("the timeline has no entry for an announced event; skipped")
            return None, None
        return case_event(entry, case_status=notice.case_status), entry.interaction
