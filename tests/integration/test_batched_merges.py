"""A batch's merges done together at the end of their round, against the real store: one
ledger insert, one mark, one move per collection for them all; the events that depend on a
merge recorded after it, on its survivor; a merge another writer beat done again on what is
live; a split that reads the log once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from services.timeline.bootstrap import build_core
from services.timeline.identity.policy import IdentityPolicy
from services.timeline.identity.resolver import Actor
from services.timeline.interactions.store import InteractionStore
from services.timeline.profiles.model import CustomerDoc
from services.timeline.profiles.store import CustomerStore
from services.timeline.recorder import Recorded, TimelineRecorder
from services.timeline.store.command_counts import CommandCounts
from services.timeline.store.documents import Document
from services.timeline.stores import TimelineStore
from tests import builders
from tests.integration.counted_store import (
    SentCommands,
    commands_sent,
    recorder_over,
)
from tests.integration.timeline_db import timeline_db
from tsunagu.v1 import interaction_pb2 as pb

T0 = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
GROUPS = 4


def _address(group: int) -> str:
    return f"m{group}@example.jp"


def _mail(tenant: str, address: str, minute: int, *extra: pb.Identifier) -> pb.Interaction:
    sender = pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=address)
    return builders.email(
        tenant,
        from_address=address,
        extra_identifiers=[sender, *extra],
        at=T0 + timedelta(minutes=minute),
    )


def _link(tenant: str, group: int, minute: int) -> pb.Interaction:
    """A signed-in chat verifying the visitor's address: it links the chat and mail customers."""
    return builders.verified(
        builders.chat(
            tenant,
            visitor=f"v{group}",
            email=_address(group),
            at=T0 + timedelta(minutes=minute),
        )
    )


def _chat(tenant: str, group: int, minute: int) -> pb.Interaction:
    return builders.chat(tenant, visitor=f"v{group}", at=T0 + timedelta(minutes=minute))


async def _two_customers_per_group(recorder: TimelineRecorder, tenant: str) -> None:
    """Per group a chat customer and a mail customer, not linked yet."""
    seeded = await recorder.record_batch(
        [
            item
            for group in range(GROUPS)
            for item in (_chat(tenant, group, group), _mail(tenant, _address(group), group))
        ]
    )
    assert all(isinstance(o, Recorded) for o in seeded), seeded
    assert len({o.customer_id for o in seeded if isinstance(o, Recorded)}) == 2 * GROUPS


async def _seeded(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> tuple[TimelineStore, CommandCounts, TimelineRecorder]:
    """The counted store with two customers per group, and the recorder that made them."""
    store, counts = counted
    recorder = recorder_over(store)
    await _two_customers_per_group(recorder, tenant)
    return store, counts, recorder


def _recorded(outcomes: Sequence[Recorded | Exception]) -> list[Recorded]:
    recorded = [o for o in outcomes if isinstance(o, Recorded)]
    assert len(recorded) == len(outcomes), outcomes
    return recorded


async def _customer(store: TimelineStore, tenant: str, customer_id: str) -> CustomerDoc:
    return (await store.customers.get_customers(tenant, [customer_id]))[customer_id]


async def test_the_merges_of_a_batch_share_one_ledger_insert_mark_and_move_per_collection(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, counts, recorder = await _seeded(counted, tenant)
    others = [
        builders.chat(tenant, visitor=f"w{k}", at=T0 + timedelta(minutes=30)) for k in range(3)
    ]
    batch = [*others[:1], *(_link(tenant, g, 20 + g) for g in range(GROUPS)), *others[1:]]

    before = commands_sent(counts)
    outcomes = _recorded(await recorder.record_batch(batch))
    sent = commands_sent(counts) - before

    links = outcomes[1 : 1 + GROUPS]
    assert all(len(link.merged_ids) == 1 for link in links), links
    db = store.db
    for link in links:
        survivor = await _customer(store, tenant, link.customer_id)
        assert survivor["interaction_count"] == 3  # the chat, the mail and the link
        [loser] = link.merged_ids
        assert (await _customer(store, tenant, loser))["merged_into"] == link.customer_id
        for collection in ("interactions", "identities", "cases"):
            assert await db[collection].count_documents({"customer_id": loser}) == 0
        assert await db["interactions"].count_documents({"customer_id": link.customer_id}) == 3
    assert await db["merges"].count_documents({"tenant": tenant, "status": "done"}) == GROUPS
    # Four merges, one write of each kind (before: four of each, and a flush before each).
    assert sent["insert:merges"] == 1, sent
    assert sent["update:merges"] == 1, sent
    assert sent["update:identities"] == 1, sent
    # The log: the move, and the projected flags of the two flushes (before and after).
    assert sent["update:interactions"] == 3, sent
    assert sent["insert:interactions"] == 2, sent


@pytest.fixture
async def sent(
    mongodb_uri: str, database_name: str
) -> AsyncIterator[tuple[TimelineStore, SentCommands]]:
    """A fresh timeline database whose client keeps every command it sends, in order."""
    commands = SentCommands()
    async with timeline_db(mongodb_uri, database_name, [commands]) as store:
        yield store, commands


async def _links_after_seeding(
    sent: tuple[TimelineStore, SentCommands], tenant: str
) -> list[Recorded]:
    """Seed two customers per group, then record a batch of the links that merge them; only
    the batch's commands are kept.
    """
    store, commands = sent
    recorder = recorder_over(store)
    await _two_customers_per_group(recorder, tenant)
    commands.sent.clear()
    links = _recorded(
        await recorder.record_batch([_link(tenant, g, 20 + g) for g in range(GROUPS)])
    )
    assert all(len(link.merged_ids) == 1 for link in links), links
    return links


def _targets(statement: Document) -> list[object]:
    """The `_id`s an update statement names (one, or an `$in`)."""
    wanted = statement["q"]["_id"]
    return list(wanted["$in"]) if isinstance(wanted, dict) else [wanted]


async def test_a_merge_writes_each_identity_once_moving_it_and_adding_its_presenters_together(
    sent: tuple[TimelineStore, SentCommands], tenant: str
) -> None:
    store, commands = sent
    links = await _links_after_seeding(sent, tenant)

    # Per merge the survivor's visitor id and the loser's address, each in one statement of
    # one bulk write (before: the address was moved by one and given its presenters by
    # another, each rewriting the whole document on the embedded store).
    [bulk] = commands.of("update", "identities")
    named = [i for statement in bulk["updates"] for i in _targets(statement)]
    assert len(named) == len(set(named)) == 2 * GROUPS, bulk["updates"]
    for link in links:
        both = sorted({link.customer_id, *link.merged_ids})
        held = await store.db["identities"].find({"customer_id": {"$in": both}}).to_list()
        assert sorted(d["kind"] for d in held) == ["chat_visitor", "email"], held
        assert all(d["customer_id"] == link.customer_id for d in held), held
        assert all(sorted(d["customer_ids"]) == both for d in held), held


async def test_a_merge_round_reads_its_customers_once_before_its_ledger_and_once_after_its_moves(
    sent: tuple[TimelineStore, SentCommands], tenant: str
) -> None:
    store, commands = sent
    links = await _links_after_seeding(sent, tenant)

    keys = commands.keys()
    ledger, settled = keys.index("insert:merges"), keys.index("update:merges")
    # The read for the ledger's snapshots, just before it, gives the survivors' versions for
    # their rebuild (before: read again after the mark); after the moves, the survivors'
    # merge chains. Nothing else of the customers is read between the ledger and settling it.
    assert keys[ledger - 1] == "find:customers", keys
    assert keys[ledger:settled].count("find:customers") == 1, keys[ledger:settled]
    last_move = max(keys.index(f"update:{c}", ledger) for c in ("interactions", "cases"))
    assert "find:customers" not in keys[ledger:last_move], keys[ledger:settled]
    # The links' own contacts are written on the survivors as the merge left them (before:
    # read again for that write).
    assert "find:customers" not in keys[settled:], keys[settled:]
    assert keys[settled:].count("update:customers") == 1, keys[settled:]
    for link in links:
        survivor = await _customer(store, tenant, link.customer_id)
        assert survivor["interaction_count"] == 3, survivor


async def test_a_merge_round_reads_its_customers_records_by_customer_never_by_an_in_list(
    sent: tuple[TimelineStore, SentCommands], tenant: str
) -> None:
    _, commands = sent
    links = await _links_after_seeding(sent, tenant)

    # The log, the cases and the identities of both customers of each merge, each read by a
    # `customer_id` equality (sent together): the embedded store scans the whole collection
    # for a `customer_id $in`, so a merge grew slower as the store grew.
    involved = sorted({c for link in links for c in (link.customer_id, *link.merged_ids)})
    for collection in ("interactions", "cases", "identities"):
        by_customer = [
            f["customer_id"]
            for c in commands.of("find", collection)
            if "customer_id" in (f := c.get("filter", {}))
        ]
        assert all(isinstance(c, str) for c in by_customer), by_customer
        assert sorted(by_customer) == involved, (collection, by_customer)


async def test_an_event_after_a_merge_on_its_customers_lands_on_the_survivor_after_it(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, _, recorder = await _seeded(counted, tenant)
    # The link, then the visitor chatting again, then mail from the merged-away address,
    # with another customer's message between them that does not wait.
    batch = [
        _link(tenant, 0, 20),
        builders.chat(tenant, visitor="w-else", at=T0 + timedelta(minutes=21)),
        _chat(tenant, 0, 22),
        _mail(tenant, _address(0), 23),
    ]

    link, other, chat, mail = _recorded(await recorder.record_batch(batch))

    assert link.merged_ids
    assert chat.customer_id == link.customer_id
    assert mail.customer_id == link.customer_id
    assert other.customer_id != link.customer_id
    survivor = await _customer(store, tenant, link.customer_id)
    assert survivor["interaction_count"] == 5
    # Recorded in the batch's order for that customer: the latest contact is the mail.
    assert survivor["last_contact_at"] == T0 + timedelta(minutes=23)


async def test_a_merge_that_needs_another_merge_of_the_batch_first_follows_it(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, counts, recorder = await _seeded(counted, tenant)
    phone = builders.unique_mobile()
    # A third customer known by a phone only, on a mail of its own address.
    [third] = _recorded(
        await recorder.record_batch(
            [
                _mail(
                    tenant,
                    "p@example.jp",
                    5,
                    pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=phone),
                )
            ]
        )
    )
    second_link = builders.verified(
        builders.chat(tenant, visitor="v0", phone=phone, at=T0 + timedelta(minutes=21))
    )

    before = commands_sent(counts)
    first, second = _recorded(await recorder.record_batch([_link(tenant, 0, 20), second_link]))
    sent = commands_sent(counts) - before

    assert first.merged_ids
    assert second.merged_ids
    assert second.customer_id == first.customer_id
    assert third.customer_id in {second.customer_id, *second.merged_ids}
    survivor = await _customer(store, tenant, second.customer_id)
    assert survivor["interaction_count"] == 5
    assert sorted(survivor["merged_ids"]) == sorted({*first.merged_ids, *second.merged_ids})
    # One round each: the second merge needed what the first left.
    assert sent["insert:merges"] == 2, sent


class _MergedElsewhere(CustomerStore):
    """Another replica merges the first loser of a bulk mark into `into` just before it."""

    def __init__(self, store: TimelineStore, into: str) -> None:
        super().__init__(store.db["customers"])
        self.into = into
        self.raced: list[str] = []

    async def replace_customers(self, writes: Sequence[tuple[CustomerDoc, int]]) -> set[str]:
        marks = [doc for doc, _ in writes if doc.get("merged_into")]
        if marks and not self.raced:
            loser = marks[0]["_id"]
            current = (await self.get_customers(marks[0]["tenant"], [loser]))[loser]
            taken: CustomerDoc = {**current, "status": "merged", "merged_into": self.into}
            assert await self.replace_customer(taken, expected_version=current["version"])
            self.raced.append(loser)
        return await super().replace_customers(writes)


async def test_a_merge_another_writer_beat_is_done_again_on_what_is_live_and_alone(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, _ = counted
    await _two_customers_per_group(recorder_over(store), tenant)
    [elsewhere] = _recorded(await recorder_over(store).record_batch([_chat(tenant, 99, 10)]))
    racing = _MergedElsewhere(store, elsewhere.customer_id)
    store.customers = racing

    outcomes = _recorded(
        await recorder_over(store).record_batch([_link(tenant, g, 20 + g) for g in range(GROUPS)])
    )

    [raced] = racing.raced
    assert all(o.merged_ids for o in outcomes), outcomes
    into = elsewhere.customer_id
    beaten = next(o for o in outcomes if into in {o.customer_id, *o.merged_ids})
    # Its event merged again: the customer the other writer took its loser into, with its
    # survivor; the loser's merge chain ends there.
    chain = [raced]
    while (nxt := (await _customer(store, tenant, chain[-1])).get("merged_into")) is not None:
        chain.append(nxt)
    assert chain[-1] == beaten.customer_id, chain
    assert into in chain, chain
    # The other merges of the batch were not held up by it.
    for outcome in outcomes:
        if outcome is not beaten:
            survivor = await _customer(store, tenant, outcome.customer_id)
            assert survivor["interaction_count"] == 3
    assert await store.db["merges"].count_documents({"tenant": tenant, "status": "pending"}) == 0


class _AppendedMeanwhile(InteractionStore):
    """Another replica records `event` (on the merge's survivor) just after a merge has read
    the log it recounts the survivor from, and before the merge writes the survivor."""

    def __init__(self, store: TimelineStore, other: TimelineRecorder, event: pb.Interaction):
        super().__init__(store.db["interactions"])
        self.other = other
        self.event: pb.Interaction | None = event
        self.recorded: list[Recorded] = []

    async def of_customers(
        self, tenant: str, customer_ids: Iterable[str], fields: Sequence[str]
    ) -> list[Document]:
        read = await super().of_customers(tenant, customer_ids, fields)
        if self.event is not None:
            event, self.event = self.event, None
            self.recorded = _recorded(await self.other.record_batch([event]))
        return read


async def test_a_contact_another_replica_adds_to_the_survivor_while_it_is_recounted_is_counted(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, _ = counted
    await _two_customers_per_group(recorder_over(store), tenant)
    other = recorder_over(store)  # over the store as it is: the other replica
    racing = _AppendedMeanwhile(store, other, _mail(tenant, _address(0), 30))
    store.interactions = racing

    [merged] = _recorded(await recorder_over(store).record_batch([_link(tenant, 0, 20)]))

    assert merged.merged_ids
    [meanwhile] = racing.recorded
    assert meanwhile.customer_id == merged.customer_id
    survivor = await _customer(store, tenant, merged.customer_id)
    in_log = await store.db["interactions"].count_documents(
        {"tenant": tenant, "customer_id": merged.customer_id}
    )
    assert in_log == 4  # the chat, the mail, the link, and the other replica's mail
    assert survivor["interaction_count"] == in_log
    assert sum(survivor["by_channel"].values()) == in_log


async def test_a_split_reads_the_log_once_and_restores_both_customers(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, counts = counted
    core = build_core(store, identity_for=lambda _tenant: IdentityPolicy("JP"))
    await _two_customers_per_group(core.recorder, tenant)
    [link] = _recorded(await core.recorder.record_batch([_link(tenant, 0, 20)]))
    entry = await store.db["merges"].find_one({"tenant": tenant, "survivor_id": link.customer_id})
    assert entry is not None

    before = commands_sent(counts)
    await core.splitter.split(
        tenant, entry["_id"], actor=Actor("agent", "a-1"), reason="two people", at=T0
    )
    sent = commands_sent(counts) - before

    [loser] = link.merged_ids
    counts_after = {
        c: (await _customer(store, tenant, c))["interaction_count"]
        for c in (link.customer_id, loser)
    }
    # The link went with the survivor (it carried the survivor's visitor id): 2 and 1.
    assert sorted(counts_after.values()) == [1, 2], counts_after
    assert "merged_into" not in await _customer(store, tenant, loser)
    # One read of each customer's log, sent together, for the move and both recounts
    # (before: one, then per customer its log again and a tally of three reads).
    assert sent["find:interactions"] == 2, sent


class _CutOffMidMerge(InteractionStore):
    """The process stops while the batch's merges move the log (after ledger and marks)."""

    def __init__(self, store: TimelineStore) -> None:
        super().__init__(store.db["interactions"])
        self.cut = False

    async def move_many(self, tenant: str, moves: Mapping[str, Sequence[str]]) -> None:
        if not self.cut:
            self.cut = True
            raise RuntimeError("killed mid-merge")
        await super().move_many(tenant, moves)


async def test_merges_cut_off_mid_batch_are_finished_at_start_and_redelivery_lands_on_survivors(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, _ = counted
    await _two_customers_per_group(recorder_over(store), tenant)
    links = [_link(tenant, g, 20 + g) for g in range(GROUPS)]
    healthy = store.interactions
    store.interactions = _CutOffMidMerge(store)

    cut = await recorder_over(store).record_batch(links)

    assert all(isinstance(o, RuntimeError) for o in cut), cut
    assert await store.db["merges"].count_documents({"tenant": tenant, "status": "pending"}) == 4
    # The restarted timeline finishes what the ledger says was begun, then gets the batch again.
    store.interactions = healthy
    core = build_core(store, identity_for=lambda _tenant: IdentityPolicy("JP"))
    assert await core.finish_interrupted() == (GROUPS, 0)
    again = _recorded(await core.recorder.record_batch(links))

    for link in again:
        survivor = await _customer(store, tenant, link.customer_id)
        assert "merged_into" not in survivor
        assert survivor["interaction_count"] == 3, survivor
    assert await store.db["merges"].count_documents({"tenant": tenant, "status": "done"}) == 4
    merged_away = await store.db["customers"].count_documents(
        {"tenant": tenant, "merged_into": {"$exists": True}}
    )
    assert merged_away == GROUPS
    for collection in ("interactions", "identities", "cases"):
        on_losers = await store.db[collection].count_documents(
            {"tenant": tenant, "customer_id": {"$in": await _losers(store, tenant)}}
        )
        assert on_losers == 0, collection


async def _losers(store: TimelineStore, tenant: str) -> list[str]:
    cursor = store.db["customers"].find({"tenant": tenant, "merged_into": {"$exists": True}})
    return [doc["_id"] async for doc in cursor]
