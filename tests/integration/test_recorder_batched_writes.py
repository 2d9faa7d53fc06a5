"""The recorder's batched reads and writes against the real store: round trips per batch,
lost races inside a bulk write, and a bulk write that fails half-way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from services.timeline.cases.model import CaseDoc
from services.timeline.cases.store import CaseStore
from services.timeline.errors import PermanentError
from services.timeline.identity.documents import Claim
from services.timeline.identity.store import IdentityStore
from services.timeline.profiles.model import CustomerDoc
from services.timeline.profiles.store import CustomerStore
from services.timeline.recorder import Recorded, TimelineRecorder
from services.timeline.store.command_counts import CommandCounts
from services.timeline.stores import TimelineStore
from tests import builders
from tests.integration.counted_store import commands_sent, recorder_over
from tsunagu.store_writes import write_many_at_version
from tsunagu.v1 import interaction_pb2 as pb

T0 = datetime.now(UTC) - timedelta(days=3)


async def _seeded(
    counted: tuple[TimelineStore, CommandCounts], tenant: str, customers: int
) -> tuple[TimelineStore, CommandCounts, TimelineRecorder]:
    """The store, its counts, and a recorder that has seen `customers` chat customers (each
    with an open case): visitors v0, v1, ….
    """
    store, counts = counted
    recorder = recorder_over(store)
    await recorder.record_batch(_chats(tenant, customers, minute=0))
    return store, counts, recorder


def _chats(tenant: str, visitors: int, *, minute: int) -> list[pb.Interaction]:
    return [
        builders.chat(tenant, visitor=f"v{k}", at=T0 + timedelta(minutes=minute, seconds=k))
        for k in range(visitors)
    ]


async def _round_trips(
    recorder: TimelineRecorder, counts: CommandCounts, batch: Sequence[pb.Interaction]
) -> tuple[Counter[str], set[str]]:
    """The commands recording the batch sent, and the customers it went to."""
    before = commands_sent(counts)
    outcomes = await recorder.record_batch(batch)
    sent = commands_sent(counts) - before
    recorded = [o for o in outcomes if isinstance(o, Recorded) and not o.duplicate]
    assert len(recorded) == len(batch), outcomes[:3]
    return sent, {o.customer_id for o in recorded}


async def test_an_attach_batch_costs_the_same_round_trips_whatever_its_size(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, counts, recorder = await _seeded(counted, tenant, 150)

    one, _ = await _round_trips(recorder, counts, _chats(tenant, 1, minute=1))
    many, customer_ids = await _round_trips(recorder, counts, _chats(tenant, 150, minute=2))

    # Per batch: the duplicate check, the identities, their customers, their cases, the
    # log's insert, the cases' and the profiles' bulk writes, the projected flags.
    assert many == one, (one, many)
    assert sum(many.values()) <= 8, many
    customers = await store.customers.get_customers(tenant, customer_ids)
    assert len(customers) == 150
    counts_by_customer = sorted(c["interaction_count"] for c in customers.values())
    assert counts_by_customer == [2] * 149 + [3]  # visitor v0 wrote in every batch
    cases = await store.cases.get(tenant, [c["open_case_id"] for c in customers.values()])
    assert sorted(c["interaction_count"] for c in cases.values()) == [2] * 149 + [3]


class _RacingCustomers(CustomerStore):
    """Another writer changes a profile just before each bulk write of the batch's profiles."""

    def __init__(self, store: TimelineStore, victim: list[str]) -> None:
        super().__init__(store.db["customers"])
        self.victim = victim

    async def replace_customers(self, writes: Sequence[tuple[CustomerDoc, int]]) -> set[str]:
        for doc, version in writes:
            if doc["_id"] in self.victim:
                current = (await self.get_customers(doc["tenant"], [doc["_id"]]))[doc["_id"]]
                assert current["version"] == version
                await self.replace_customer(
                    {**current, "separated_from": ["cus_elsewhere"]}, expected_version=version
                )
        return await super().replace_customers(writes)


class _RacingCases(CaseStore):
    """Another writer tags a case just before each bulk write of the batch's cases."""

    def __init__(self, store: TimelineStore) -> None:
        super().__init__(store.db["cases"])
        self.raced: list[str] = []

    async def save_many(self, writes: Sequence[tuple[CaseDoc, int | None]]) -> set[str]:
        for doc, version in writes:
            if version is not None and not self.raced:
                current = (await self.get(doc["tenant"], [doc["_id"]]))[doc["_id"]]
                await self.replace({**current, "tags": ["raced"]}, expected_version=version)
                self.raced.append(doc["_id"])
        return await super().save_many(writes)


async def test_a_profile_and_a_case_another_writer_changed_mid_batch_keep_both_writes(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, _ = counted
    first = await recorder_over(store).record_batch(_chats(tenant, 3, minute=0))
    victim = [o.customer_id for o in first if isinstance(o, Recorded)][:1]
    store.customers = _RacingCustomers(store, victim)
    cases = _RacingCases(store)
    store.cases = cases

    outcomes = await recorder_over(store).record_batch(_chats(tenant, 3, minute=1))

    assert all(isinstance(o, Recorded) for o in outcomes), outcomes
    ids = [o.customer_id for o in outcomes if isinstance(o, Recorded)]
    profiles = await store.customers.get_customers(tenant, ids)
    # Each message counted once; the other writer's change to the raced profile kept.
    assert [profiles[c]["interaction_count"] for c in ids] == [2, 2, 2]
    assert profiles[victim[0]]["separated_from"] == ["cus_elsewhere"]
    [raced] = cases.raced
    case = (await store.cases.get(tenant, [raced]))[raced]
    assert case["tags"] == ["raced"]
    assert case["interaction_count"] == 2


class _FailingAfterWrite(CaseStore):
    """The bulk write of cases reaches the store, then the connection drops (once)."""

    def __init__(self, store: TimelineStore) -> None:
        super().__init__(store.db["cases"])
        self.failures = 1

    async def save_many(self, writes: Sequence[tuple[CaseDoc, int | None]]) -> set[str]:
        lost = await super().save_many(writes)
        if self.failures:
            self.failures -= 1
            raise ConnectionResetError("connection dropped after the write")
        return lost


async def test_a_bulk_write_cut_off_half_way_is_recovered_by_redelivery_without_doubling(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, _ = counted
    await recorder_over(store).record_batch(_chats(tenant, 4, minute=0))
    store.cases = _FailingAfterWrite(store)
    batch = _chats(tenant, 4, minute=1)

    failed = await recorder_over(store).record_batch(batch)
    again = await recorder_over(store).record_batch(batch)  # the redelivery

    assert all(isinstance(o, ConnectionResetError) for o in failed), failed
    assert all(isinstance(o, Recorded) and o.duplicate for o in again), again
    ids = {o.customer_id for o in again if isinstance(o, Recorded)}
    profiles = await store.customers.get_customers(tenant, ids)
    assert sorted(p["interaction_count"] for p in profiles.values()) == [2, 2, 2, 2]
    for profile in profiles.values():
        case_id = profile["open_case_id"]
        case = (await store.cases.get(tenant, [case_id]))[case_id]
        assert case["interaction_count"] == 2, case
    states = await store.interactions.interaction_states(tenant, [i.event_id for i in batch])
    assert all(s.get("projected") for s in states.values())


async def test_versioned_bulk_writes_report_each_lost_race_and_write_the_rest(
    counted: tuple[TimelineStore, CommandCounts],
) -> None:
    store, _ = counted
    docs = store.db["versioned_probe"]
    await docs.insert_many([{"_id": i, "tenant": "t", "version": 1} for i in "abd"])

    lost = await write_many_at_version(
        docs,
        [
            ({"_id": "a", "tenant": "t", "version": 1, "x": 1}, 1),  # at its version
            ({"_id": "b", "tenant": "t", "version": 0, "x": 1}, 0),  # changed since
            ({"_id": "c", "tenant": "t", "version": 0, "x": 1}, None),  # new
            ({"_id": "d", "tenant": "t", "version": 0, "x": 1}, None),  # "new", but taken
        ],
    )

    assert lost == {"b", "d"}
    stored = {d["_id"]: d async for d in docs.find({})}
    assert stored == {
        "a": {"_id": "a", "tenant": "t", "version": 2, "x": 1},
        "b": {"_id": "b", "tenant": "t", "version": 1},
        "c": {"_id": "c", "tenant": "t", "version": 0, "x": 1},
        "d": {"_id": "d", "tenant": "t", "version": 1},
    }


async def _two_customers_to_link(recorder: TimelineRecorder, tenant: str, n: int) -> pb.Interaction:
    """A chat customer and an email customer, and the verified email that links them."""
    visitor = f"linked-{n}"
    address = f"linked-{n}@example.jp"
    await recorder.record_batch(
        [
            builders.chat(tenant, visitor=visitor, at=T0),
            builders.email(
                tenant,
                from_address=address,
                extra_identifiers=[pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=address)],
                at=T0,
            ),
        ]
    )
    return builders.verified(
        builders.chat(tenant, visitor=visitor, email=address, at=T0 + timedelta(minutes=5))
    )


async def test_the_events_after_a_merge_in_a_batch_are_read_for_together_again(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, counts, recorder = await _seeded(counted, tenant, 40)
    links = [await _two_customers_to_link(recorder, tenant, n) for n in range(2)]

    few, _ = await _round_trips(recorder, counts, [links[0], *_chats(tenant, 1, minute=10)])
    many, customer_ids = await _round_trips(
        recorder, counts, [links[1], *_chats(tenant, 40, minute=11)]
    )

    # The merge flushes what came before it; what follows it is read for in one go again.
    assert many == few, (few, many)
    profiles = await store.customers.get_customers(tenant, customer_ids)
    assert sorted(p["interaction_count"] for p in profiles.values()) == [2] * 39 + [3, 3]


async def test_a_batch_of_new_customers_creates_them_in_bulk_whatever_its_size(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, counts = counted
    recorder = recorder_over(store)

    one, _ = await _round_trips(recorder, counts, _chats(tenant, 1, minute=0)[:1])
    batch = [
        builders.chat(tenant, visitor=f"n{k}", at=T0 + timedelta(seconds=k)) for k in range(60)
    ]
    # The first ten write again: they attach to the customers the batch just created.
    batch += [
        builders.chat(tenant, visitor=f"n{k}", at=T0 + timedelta(minutes=5, seconds=k))
        for k in range(10)
    ]
    many, customer_ids = await _round_trips(recorder, counts, batch)

    assert many == one, (one, many)
    profiles = await store.customers.get_customers(tenant, customer_ids)
    assert len(profiles) == 60
    assert sorted(p["interaction_count"] for p in profiles.values()) == [1] * 50 + [2] * 10
    assert all(p["open_case_id"] for p in profiles.values())


class _ClaimedMeanwhile(IdentityStore):
    """Another writer claims one identifier just before the batch's bulk claim."""

    def __init__(self, store: TimelineStore, key: tuple[str, str], owner: str) -> None:
        super().__init__(store.db)
        self.key, self.owner = key, owner

    async def claim_many(self, claims: Sequence[Claim]) -> list[list[tuple[str, str]]]:
        if claims:
            at = claims[0].at
            await self.claim_identities(Claim(claims[0].tenant, self.owner, [self.key], "e0", at))
        return await super().claim_many(claims)


async def test_a_new_customers_identifier_claimed_by_another_writer_meanwhile_leads_to_it(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, _ = counted
    [other] = await recorder_over(store).record_batch([builders.chat(tenant, visitor="other")])
    assert isinstance(other, Recorded)
    store.identities = _ClaimedMeanwhile(store, ("chat_visitor", "taken"), other.customer_id)
    batch = [
        builders.chat(tenant, visitor="taken", at=T0),
        builders.chat(tenant, visitor="free", at=T0),
    ]

    taken, free = await recorder_over(store).record_batch(batch)

    assert isinstance(taken, Recorded)
    assert isinstance(free, Recorded)
    assert taken.customer_id == other.customer_id
    assert free.customer_id not in {other.customer_id, taken.customer_id}
    # The customer made for the event in bulk, beaten to its only identifier, is gone.
    customers = store.db["customers"]
    assert await customers.count_documents({"tenant": tenant}) == 2


async def test_a_malformed_item_fails_alone_and_the_rest_is_still_read_for_together(
    counted: tuple[TimelineStore, CommandCounts], tenant: str
) -> None:
    store, counts, recorder = await _seeded(counted, tenant, 20)
    out_of_range = builders.chat(tenant, visitor="x3", at=T0)
    out_of_range.occurred_at.seconds = 10**12  # past year 9999: no datetime holds it
    bad_phone = builders.chat(tenant, visitor="x4", phone="not a phone number", at=T0)
    no_tenant = builders.chat("", visitor="x5", at=T0)
    good = _chats(tenant, 20, minute=1)
    before = commands_sent(counts)

    outcomes = await recorder.record_batch([out_of_range, *good[:10], no_tenant, *good[10:]])
    sent = commands_sent(counts) - before

    assert isinstance(outcomes[0], PermanentError)
    assert isinstance(outcomes[11], PermanentError)
    recorded = [o for o in outcomes if isinstance(o, Recorded)]
    assert len(recorded) == 20
    assert all(not o.duplicate for o in recorded)
    assert sum(sent.values()) <= 8, sent  # still one read of each kind for the batch
    [phone_only] = await recorder.record_batch([bad_phone])  # the bad identifier is left out
    assert isinstance(phone_only, Recorded)
    profiles = await store.customers.get_customers(tenant, {o.customer_id for o in recorded})
    assert sorted(p["interaction_count"] for p in profiles.values()) == [2] * 20
