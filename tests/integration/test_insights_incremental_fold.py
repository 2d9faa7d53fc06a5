"""Insights folds a case's new events onto its saved facts (issue 11), on the real store.

Events of a case arriving in order are folded on without reading any event back (counted at
the insights store's own client, by a command listener); one arriving out of order, a
redelivered duplicate, or a save another replica made meanwhile (a lost version race) make
the case folded again from all its events, and the figures are those of all the events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from nats.aio.client import Client
from pymongo import AsyncMongoClient

import services.insights.store as insights_store
from services.insights.events import from_notice
from services.insights.facts import fold_case
from services.insights.projector import Applied, Projector
from services.insights.settings import InsightsSettings
from services.insights.store import InsightsStore, SavedCase
from services.timeline.store.command_counts import CommandCounts
from services.timeline.store.documents import Document
from tests import builders
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.counted_store import SentFinds
from tests.integration.insights_fixtures import (
    Figures,
    figures,
    query,
    running,
    timeline_notice,
    wait_for_rows,
)
from tsunagu.v1 import insights_pb2_grpc, notices_pb2, timeline_pb2

DUE = 24 * 3600.0
EVENT_READS = ("find:events", "getMore:events")


@dataclass(frozen=True)
class Conversation:
    """One case of one customer: its messages, each a notice carrying its entry."""

    tenant: str
    t0: datetime
    customer: str = "c-1"
    case: str = "case-1"

    def contact(self, minutes: float) -> notices_pb2.TimelineUpdated:
        at = self.t0 + timedelta(minutes=minutes)
        chat = builders.chat(self.tenant, visitor=self.customer, at=at)
        return timeline_notice(self.tenant, chat, customer=self.customer, case=self.case)

    def reply(self, minutes: float) -> notices_pb2.TimelineUpdated:
        at = self.t0 + timedelta(minutes=minutes)
        answer = builders.agent_reply(self.tenant, visitor=self.customer, text="On it", at=at)
        return timeline_notice(self.tenant, answer, customer=self.customer, case=self.case)


def _event_reads(counts: CommandCounts) -> int:
    commands = counts.snapshot()["commands"]
    return sum(commands[key]["count"] for key in EVENT_READS if key in commands)


@pytest.fixture
def store_commands(monkeypatch: pytest.MonkeyPatch) -> CommandCounts:
    """The commands the insights store clients opened in this test send, counted."""
    counts = CommandCounts()
    counted = partial(AsyncMongoClient, event_listeners=[counts])
    monkeypatch.setattr(insights_store, "AsyncMongoClient", counted)
    return counts


async def _announce(nc: Client, notice: notices_pb2.TimelineUpdated) -> None:
    await nc.publish(
        f"timeline.updated.{notice.tenant}.{notice.customer_id}", notice.SerializeToString()
    )
    await nc.flush()


async def test_in_order_events_read_none_back_and_a_late_one_refolds_the_case(
    insights_config: InsightsSettings,
    operator: Client,
    tenant: str,
    callers: CallerSet,
    store_commands: CommandCounts,
) -> None:
    case = Conversation(tenant, datetime.now(UTC) - timedelta(hours=2))
    async with running(insights_config) as service:
        channel = channel_for(service.server.address, callers.service)
        insights = insights_pb2_grpc.InsightsServiceStub(channel)
        async with channel:

            async def announced(notice: notices_pb2.TimelineUpdated, until: Figures) -> None:
                """Announce one notice and wait until the case's figures say `until`."""
                await _announce(operator, notice)
                await wait_for_rows(
                    insights,
                    query(tenant),
                    lambda rows: len(rows) == 1 and until.items() <= figures(rows[0]).items(),
                    failed=service.failed,
                    deadline_seconds=60,
                )

            # A new case: no saved facts to go on from, so its events are read (its own).
            await announced(case.contact(0), {"cases": 1, "contacts_per_case": 1})
            opened = _event_reads(store_commands)
            assert opened >= 1
            # Each one after the last folded: folded onto the saved facts, nothing read.
            await announced(case.reply(10), {"first_response_seconds": 600})
            await announced(case.contact(30), {"contacts_per_case": 2})
            await announced(case.reply(45), {"average_response_seconds": (600 + 900) / 2})
            assert _event_reads(store_commands) == opened
            # An answer older than the last folded event arrives late: the case is folded
            # again from all its events, and the figures are those of all of them.
            await announced(case.reply(4), {"first_response_seconds": 240, "contacts_per_case": 2})
            assert _event_reads(store_commands) > opened
            [row] = (await insights.GetServiceMetrics(query(tenant))).rows
            # Waits: 4 min (the late answer), 15 min; the 10-minute answer waited for nobody.
            assert figures(row)["average_response_seconds"] == (240 + 900) / 2
            saved = await service.store.case(tenant, case.case)
            assert saved is not None
            assert saved.event_count == 5


class RacingStore(InsightsStore):
    """A replica's store on which, right after its first read of saved facts, another
    replica applies its notices (so that this replica's save meets a newer version)."""

    def __init__(self, *args: Any, meanwhile: Any) -> None:
        super().__init__(*args)
        self.meanwhile = meanwhile
        self.raced = 0

    async def saved_cases(self, tenant: str, case_ids: Iterable[str]) -> dict[str, SavedCase]:
        saved = await super().saved_cases(tenant, case_ids)
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            self.raced += 1
            await meanwhile()
        return saved


@pytest.fixture
async def clients(
    mongodb_uri: str, database_name: str
) -> AsyncIterator[tuple[AsyncMongoClient[Document], CommandCounts]]:
    """A client of this test's insights database that counts its commands, and the counts."""
    counts = CommandCounts()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_uri, tz_aware=True, event_listeners=[counts]
    )
    try:
        yield client, counts
    finally:
        await client.drop_database(f"{database_name}_insights")
        await client.close()


async def _no_read_back(
    tenant: str, event_ids: Sequence[str]
) -> Sequence[timeline_pb2.TimelineEntry]:
    raise AssertionError("the notices carry their entries")


def _projector(store: InsightsStore) -> Projector:
    return Projector(store, read_many=_no_read_back, follow_up_due_seconds=DUE)


async def test_a_save_that_loses_the_race_to_another_replica_refolds_the_case_fully(
    clients: tuple[AsyncMongoClient[Document], CommandCounts], database_name: str, tenant: str
) -> None:
    client, counts = clients
    db = client[f"{database_name}_insights"]
    other = InsightsStore(db)
    await other.ensure_indexes()
    case = Conversation(tenant, datetime.now(UTC) - timedelta(hours=2))
    opening, first_answer, second_contact, second_answer = (
        case.contact(0),
        case.reply(10),
        case.contact(30),
        case.reply(45),
    )
    assert await _projector(other).apply([opening]) == [Applied.RECORDED]

    async def other_replica_applies() -> None:
        # In order onto the facts both replicas read: its fold goes on from them and wins.
        assert await _projector(other).apply([second_contact]) == [Applied.RECORDED]

    racing = RacingStore(db, meanwhile=other_replica_applies)
    reads = _event_reads(counts)
    # Also in order onto what it read (the opening); its save finds the other's newer version.
    assert await _projector(racing).apply([first_answer]) == [Applied.RECORDED]
    assert racing.raced == 1
    # The lost race was folded again from all the events: read back, nothing lost.
    assert _event_reads(counts) > reads
    events = await racing.events_of_cases(tenant, [case.case])
    assert {e.event_id for e in events[case.case]} == {
        n.event_id for n in (opening, first_answer, second_contact)
    }
    saved = await racing.saved_cases(tenant, [case.case])
    assert saved[case.case].facts == fold_case(events[case.case], follow_up_due_seconds=DUE)
    # opening, the other's save, this one's: a version each.
    assert saved[case.case].version == 3
    # Afterwards both replicas go on from the facts of all three events.
    reads = _event_reads(counts)
    assert await _projector(other).apply([second_answer]) == [Applied.RECORDED]
    assert _event_reads(counts) == reads
    [case_facts] = (await racing.saved_cases(tenant, [case.case])).values()
    everything = [
        e
        for n in (opening, first_answer, second_contact, second_answer)
        if (e := from_notice(n)) is not None
    ]
    assert case_facts.facts == fold_case(everything, follow_up_due_seconds=DUE)
    assert case_facts.facts.response_seconds == [600.0, 900.0]


async def test_a_redelivered_notice_refolds_its_case_from_all_events(
    clients: tuple[AsyncMongoClient[Document], CommandCounts], database_name: str, tenant: str
) -> None:
    client, counts = clients
    store = InsightsStore(client[f"{database_name}_insights"])
    await store.ensure_indexes()
    projector = _projector(store)
    case = Conversation(tenant, datetime.now(UTC) - timedelta(hours=2))
    opening, answer, later = case.contact(0), case.reply(10), case.contact(30)
    assert await projector.apply([opening, answer]) == [Applied.RECORDED] * 2
    reads = _event_reads(counts)
    # The answer again (its first fold may have been cut short) beside a new, in-order event.
    assert await projector.apply([answer, later]) == [Applied.DUPLICATE, Applied.RECORDED]
    assert _event_reads(counts) > reads
    saved = await store.case(tenant, case.case)
    everything = [e for n in (opening, answer, later) if (e := from_notice(n)) is not None]
    assert saved == fold_case(everything, follow_up_due_seconds=DUE)


async def test_a_bulk_load_skips_events_recorded_before_and_counts_the_new_ones(
    clients: tuple[AsyncMongoClient[Document], CommandCounts], database_name: str, tenant: str
) -> None:
    client, _ = clients
    store = InsightsStore(client[f"{database_name}_insights"])
    await store.ensure_indexes()
    case = Conversation(tenant, datetime.now(UTC) - timedelta(hours=2))
    notices = (case.contact(0), case.reply(5), case.contact(9))
    first, second, third = [e for n in notices if (e := from_notice(n)) is not None]
    assert await store.record_many([first, second]) == 2

    assert await store.record_many([second, third, third]) == 1

    assert await store.record_many([]) == 0
    stored = await store.events_of_cases(tenant, [first.case_id])
    assert sorted(e.event_id for e in stored[first.case_id]) == sorted(
        e.event_id for e in (first, second, third)
    )


async def test_cases_folded_from_all_their_events_read_them_by_equality_never_in(
    mongodb_uri: str, database_name: str, tenant: str
) -> None:
    """An `$in` on `case_key` scans every event on the embedded store; equalities do not."""
    finds = SentFinds()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_uri, tz_aware=True, event_listeners=[finds]
    )
    try:
        store = InsightsStore(client[f"{database_name}_insights"])
        await store.ensure_indexes()
        start = datetime.now(UTC) - timedelta(hours=2)
        first = Conversation(tenant, start)
        second = Conversation(tenant, start, customer="c-2", case="case-2")
        notices = [first.contact(0), second.contact(1), first.reply(5), second.reply(6)]

        assert await _projector(store).apply(notices) == [Applied.RECORDED] * 4

        filters = finds.filters("events")
        assert filters, "new cases are folded from all their events"
        assert all(set(f) == {"case_key"} and isinstance(f["case_key"], str) for f in filters)
        assert sorted(f["case_key"] for f in filters) == sorted(
            {insights_store._key(tenant, first.case), insights_store._key(tenant, second.case)}
        )
        for case in (first, second):
            facts = await store.case(tenant, case.case)
            assert facts is not None
            assert facts.response_seconds == [300.0]
    finally:
        await client.drop_database(f"{database_name}_insights")
        await client.close()
