"""A merge's writes against the real store: one re-point per collection, and losers marked in
one bulk write that a writer racing on one loser does not undo.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from services.timeline.identity.documents import IdentityDoc
from services.timeline.identity.policy import IdentityKey
from services.timeline.identity.store import IdentityStore
from services.timeline.profiles.model import CustomerDoc
from services.timeline.profiles.store import CustomerStore
from services.timeline.recorder import Recorded, TimelineRecorder
from services.timeline.store.command_counts import CommandCounts
from services.timeline.stores import TimelineStore
from tests import builders
from tests.integration.counted_store import commands_sent, recorder_over
from tsunagu.v1 import interaction_pb2 as pb

T0 = datetime.now(UTC) - timedelta(days=3)
PHONE = "+81 90-1234-5678"


def _email(tenant: str, address: str, identifier: pb.Identifier, minute: int) -> pb.Interaction:
    return builders.email(
        tenant,
        from_address=address,
        extra_identifiers=[identifier],
        at=T0 + timedelta(minutes=minute),
    )


async def _three_customers(recorder: TimelineRecorder, tenant: str) -> list[Recorded]:
    """A chat customer, one known by an address and one by a phone (two messages each)."""
    address = pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value="m@example.jp")
    phone = pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=PHONE)
    outcomes: list[Recorded | Exception] = []
    for minute in (0, 3):
        outcomes = await recorder.record_batch(
            [
                builders.chat(tenant, visitor="v-merge", at=T0 + timedelta(minutes=minute)),
                _email(tenant, "m@example.jp", address, minute + 1),
                _email(tenant, "other@example.jp", phone, minute + 2),
            ]
        )
    recorded = [o for o in outcomes if isinstance(o, Recorded)]
    assert len({o.customer_id for o in recorded}) == 3, outcomes
    return recorded


async def _seeded(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> tuple[TimelineStore, CommandCounts, TimelineRecorder]:
    """The counted store with the three customers to merge, and the recorder that made them."""
    store, counts = counted
    recorder = recorder_over(store)
    await _three_customers(recorder, tenant)
    return store, counts, recorder


def _link(tenant: str) -> pb.Interaction:
    """A signed-in chat that verifies the address and the phone: it links all three."""
    return builders.verified(
        builders.chat(
            tenant,
            visitor="v-merge",
            email="m@example.jp",
            phone=PHONE,
            at=T0 + timedelta(minutes=10),
        )
    )


async def _merged_correctly(store: TimelineStore, tenant: str, outcome: Recorded) -> None:
    """Every interaction, identity and case is on the survivor; the losers are marked."""
    assert len(outcome.merged_ids) == 2, outcome
    survivor = outcome.customer_id
    db, losers = store.db, {"$in": outcome.merged_ids}
    assert await db["interactions"].count_documents({"customer_id": survivor}) == 7
    for collection in ("interactions", "identities", "cases"):
        assert await db[collection].count_documents({"customer_id": losers}) == 0, collection
    docs = await store.customers.get_customers(tenant, [survivor, *outcome.merged_ids])
    assert docs[survivor]["interaction_count"] == 7
    for loser in outcome.merged_ids:
        assert docs[loser]["merged_into"] == survivor
        assert docs[loser]["status"] == "merged"


async def test_a_merge_re_points_each_collection_once_and_marks_its_losers_in_one_write(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, counts, recorder = await _seeded(counted, tenant)

    before = commands_sent(counts)
    [outcome] = await recorder.record_batch([_link(tenant)])
    sent = commands_sent(counts) - before

    assert isinstance(outcome, Recorded)
    await _merged_correctly(store, tenant, outcome)
    # Each collection is re-pointed by one bulk write, by `_id`, after one read of the merged
    # customers' records (before: one update_many by customer, twice, around the marks); both
    # losers are marked in one bulk write (before: one write each). The identities' bulk
    # write also records every merged customer as a presenter of the event's three
    # identifiers (before: one update each). The rest is the event's own: its case, its
    # profile, the survivor's rebuild and the projected flag. Before: 5, 3, 3 and 4.
    assert sent["update:identities"] == 1, sent
    assert sent["update:interactions"] == 2, sent
    assert sent["update:cases"] == 2, sent
    assert sent["update:customers"] == 3, sent


class _CountingLookups(IdentityStore):
    """Counts the reads of identities by identifier (the batch's lookups)."""

    def __init__(self, store: TimelineStore) -> None:
        super().__init__(store.db)
        self.calls = 0

    async def identity_docs(
        self, tenant: str, keys: Sequence[IdentityKey]
    ) -> dict[IdentityKey, IdentityDoc]:
        self.calls += 1
        return await super().identity_docs(tenant, keys)


class _RacingOnALoser(CustomerStore):
    """Another writer changes the first loser just before the merge's bulk write marks it."""

    def __init__(self, store: TimelineStore) -> None:
        super().__init__(store.db["customers"])
        self.raced: list[str] = []

    async def replace_customers(self, writes: Sequence[tuple[CustomerDoc, int]]) -> set[str]:
        for doc, version in writes:
            if doc.get("merged_into") and not self.raced:
                current = (await self.get_customers(doc["tenant"], [doc["_id"]]))[doc["_id"]]
                await self.replace_customer(
                    {**current, "separated_from": ["cus_elsewhere"]}, expected_version=version
                )
                self.raced.append(doc["_id"])
        return await super().replace_customers(writes)


async def test_a_loser_another_writer_changed_before_the_bulk_mark_is_marked_again_alone(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, _ = counted
    await _three_customers(recorder_over(store), tenant)
    racing = _RacingOnALoser(store)
    store.customers = racing

    [outcome] = await recorder_over(store).record_batch([_link(tenant)])

    assert isinstance(outcome, Recorded)
    assert len(racing.raced) == 1
    await _merged_correctly(store, tenant, outcome)
    # The other writer's change to the raced loser stands under the mark.
    [raced] = racing.raced
    doc = (await store.customers.get_customers(tenant, [raced]))[raced]
    assert doc["separated_from"] == ["cus_elsewhere"]


async def test_a_merge_mid_batch_leaves_the_batch_read_standing_for_the_other_customers(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, counts, recorder = await _seeded(counted, tenant)
    chats = [
        builders.chat(tenant, visitor=f"w{k}", at=T0 + timedelta(minutes=20, seconds=k))
        for k in range(30)
    ]
    await recorder.record_batch(chats)  # thirty customers, each with an open case
    again = [
        builders.chat(tenant, visitor=f"w{k}", at=T0 + timedelta(minutes=30, seconds=k))
        for k in range(30)
    ]

    lookups = _CountingLookups(store)
    store.identities = lookups
    recorder = recorder_over(store)
    before = commands_sent(counts)
    outcomes = await recorder.record_batch([*again[:15], _link(tenant), *again[15:]])
    sent = commands_sent(counts) - before

    recorded = [o for o in outcomes if isinstance(o, Recorded)]
    assert len(recorded) == 31, outcomes
    await _merged_correctly(store, tenant, recorded[15])
    # The identities were read once for the whole batch (before: again after the merge);
    # the others are the merge's own, of the identities it moves: one read per customer it
    # involves, sent together.
    assert lookups.calls == 1
    involved = {recorded[15].customer_id, *recorded[15].merged_ids}
    assert sent["find:identities"] == 1 + len(involved), sent
    ids = {o.customer_id for o in recorded if o is not recorded[15]}
    profiles = await store.customers.get_customers(tenant, ids)
    counts_by_customer = sorted(p["interaction_count"] for p in profiles.values())
    assert counts_by_customer == [2] * 30, counts_by_customer
    cases = await store.db["cases"].find({"customer_id": {"$in": list(ids)}}).to_list()
    assert sorted(c["interaction_count"] for c in cases) == [2] * 30
