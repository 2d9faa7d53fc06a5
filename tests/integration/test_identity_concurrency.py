"""Two real timeline processes race on one stream; a replay gives the same customers.

Two `python -m services.timeline` processes share one durable consumer and one database, with
a small fetch batch so both get work. Each person's events share identifiers in chains (a call
from phone P, an email from E, then an email carrying P and E that merges them), are published
at once and shuffled, and older events of either side arrive after the merging event. Agent
identity actions (a manual merge and the split of an automatic merge) travel in the same
stream. When the stream is drained the store must hold one live customer per person, every
event exactly once on a live customer with counts that match the log, identities that resolve
to those customers, and no dead letters. Replaying the whole stream into an empty database
(one replica, so one deterministic order) must give the same partition of events into
customers; two replays must give the same customer ids.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.timeline.profiles.profile import customer_id_for
from tests import builders
from tests.action_keys import session_action_keys
from tsunagu.bus.publisher import InteractionPublisher, Published
from tsunagu.bus.streams import ensure_streams
from tsunagu.bus.subjects import DEAD_LETTER_STREAM, INTERACTIONS_STREAM
from tsunagu.local.processes import ManagedProcess, NatsServer
from tsunagu.v1 import interaction_pb2 as pb

log = logging.getLogger("tests.identity_concurrency")

Document = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
DRAIN_SECONDS = 45.0

CHAIN_PEOPLE = 24  # P, E: call(P), email(E), email(P+E) merges, older call/email arrive later
TRIPLE_PEOPLE = 6  # P, E, CRM id K: two merging events, older events of both ends later
ATTACH_PEOPLE = 10  # four calls from one phone at once: the unique index decides


# -- building the stream ----------------------------------------------------------------------


def phone_id(value: str) -> pb.Identifier:
    return pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=value)


def email_id(value: str) -> pb.Identifier:
    return pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=value)


def crm_id(value: str) -> pb.Identifier:
    return pb.Identifier(kind=pb.IDENTIFIER_KIND_EXTERNAL_CRM_ID, value=value)


def call_from(tenant: str, number: str, at: datetime, *extra: pb.Identifier) -> pb.Interaction:
    call = builders.call(tenant, from_number=number, call_id=uuid.uuid4().hex, at=at)
    call.identifiers.extend([phone_id(number), *extra])  # what voice ingestion adds
    # Verified, as a channel that vouches for them sends them: the race is about merging.
    return builders.verified(call)


def email_from(tenant: str, address: str, at: datetime, *extra: pb.Identifier) -> pb.Interaction:
    return builders.verified(
        builders.email(
            tenant, from_address=address, extra_identifiers=[email_id(address), *extra], at=at
        )
    )


def agent_action(tenant: str, customer_id: str, kind: pb.Kind.ValueType) -> pb.Interaction:
    action = pb.Interaction(
        event_id=str(uuid.uuid4()),
        tenant=tenant,
        channel=pb.CHANNEL_AGENT_DESK,
        kind=kind,
        direction=pb.DIRECTION_INTERNAL,
        actor=pb.Actor(type=pb.ACTOR_TYPE_AGENT, id="agent-7", display_name="Suzuki"),
    )
    action.occurred_at.FromDatetime(datetime.now(UTC) - timedelta(seconds=1))
    action.agent_action.customer_id = customer_id
    return action


@dataclass
class Person:
    """Events of one person; `late` must be delivered after `after` (the merging event)."""

    events: list[pb.Interaction] = field(default_factory=list)
    keys: set[tuple[str, str]] = field(default_factory=set)
    late: list[pb.Interaction] = field(default_factory=list)
    after: pb.Interaction | None = None


def chain_person(tenant: str, i: int) -> Person:
    number, address = f"090-{1000 + i:04d}-{2000 + i:04d}", f"chain{i}@example.jp"
    at = T0 + timedelta(hours=i)
    older_call = call_from(tenant, number, at)
    older_email = email_from(tenant, address, at + timedelta(minutes=1))
    merging = email_from(tenant, address, at + timedelta(minutes=10), phone_id(number))
    return Person(
        events=[
            call_from(tenant, number, at + timedelta(minutes=2)),
            email_from(tenant, address, at + timedelta(minutes=3)),
            merging,
            call_from(tenant, number, at + timedelta(minutes=20)),
        ],
        keys={("phone", f"+8190{1000 + i:04d}{2000 + i:04d}"), ("email", address)},
        late=[older_call, older_email],
        after=merging,
    )


def triple_person(tenant: str, i: int) -> Person:
    number, address, crm = f"080-{3000 + i:04d}-{4000 + i:04d}", f"triple{i}@example.jp", f"K{i}"
    at = T0 + timedelta(days=1, hours=i)
    links_pe = email_from(tenant, address, at + timedelta(minutes=10), phone_id(number))
    links_ek = email_from(tenant, address, at + timedelta(minutes=11), crm_id(crm))
    return Person(
        events=[
            call_from(tenant, number, at + timedelta(minutes=2)),
            email_from(tenant, address, at + timedelta(minutes=3)),
            call_from(tenant, f"070-{5000 + i:04d}-0000", at + timedelta(minutes=4), crm_id(crm)),
            links_pe,
            links_ek,
        ],
        keys={
            ("phone", f"+8180{3000 + i:04d}{4000 + i:04d}"),
            ("phone", f"+8170{5000 + i:04d}0000"),
            ("email", address),
            ("external_crm_id", crm),
        },
        late=[
            call_from(tenant, number, at),
            call_from(tenant, f"070-{5000 + i:04d}-0000", at + timedelta(minutes=1), crm_id(crm)),
        ],
        after=links_ek,
    )


def attach_person(tenant: str, i: int) -> Person:
    number = f"090-{6000 + i:04d}-7777"
    at = T0 + timedelta(days=1, hours=12 + i)
    return Person(
        events=[call_from(tenant, number, at + timedelta(minutes=m)) for m in range(4)],
        keys={("phone", f"+8190{6000 + i:04d}7777")},
    )


def shuffled(
    people: Iterable[Person], extra: Iterable[pb.Interaction], rng: random.Random
) -> list[pb.Interaction]:
    """All events in random order, each late event somewhere after its person's merge."""
    people = list(people)
    order = [e for p in people for e in p.events] + list(extra)
    rng.shuffle(order)
    for person in people:
        for late in person.late:
            assert person.after is not None
            at = order.index(person.after)
            order.insert(rng.randint(at + 1, len(order)), late)
    return order


# -- processes and the store ----------------------------------------------------------------


MERGES_BY_PROCESS: dict[str, int] = {}


def _sink(name: str, line: str) -> None:
    if " merged [" in line:
        MERGES_BY_PROCESS[name] = MERGES_BY_PROCESS.get(name, 0) + 1
    log.debug("[%s] %s", name, line)


@asynccontextmanager
async def timeline_process(
    name: str,
    *,
    nats_url: str,
    mongodb_uri: str,
    database: str,
    consumer: str,
    tenant: str,
    fetch_batch: int,
) -> AsyncIterator[ManagedProcess]:
    """A real `python -m services.timeline`, stopped (SIGTERM, then SIGKILL) on exit."""
    MERGES_BY_PROCESS.pop(name, None)
    process = ManagedProcess(
        name,
        [sys.executable, "-m", "services.timeline"],
        ready_pattern=r"timeline ready on",
        env={
            "TSUNAGU_TIMELINE_HOST": "127.0.0.1",
            "TSUNAGU_TIMELINE_PORT": "0",
            "TSUNAGU_TIMELINE_NATS_URL": nats_url,
            "TSUNAGU_TIMELINE_MONGODB_URI": mongodb_uri,
            "TSUNAGU_TIMELINE_MONGODB_DATABASE": database,
            "TSUNAGU_TIMELINE_CONSUMER_NAME": consumer,
            "TSUNAGU_TIMELINE_SUBJECT_FILTER": f"interactions.{tenant}.>",
            "TSUNAGU_TIMELINE_FETCH_BATCH": str(fetch_batch),
            "TSUNAGU_TIMELINE_SHUTDOWN_GRACE_SECONDS": "2",
            **session_action_keys().timeline_env(),
            "OTEL_SERVICE_NAME": f"tsunagu-{name}",
            "OTEL_TRACES_EXPORTER": "none",
        },
        cwd=ROOT,
        sink=_sink,
        start_timeout=60,
        stop_timeout=10,
    )
    async with process:
        yield process


def _crashed(processes: Iterable[ManagedProcess]) -> str:
    return "\n".join(
        f"{p.name} exited with {p.returncode}:\n" + "\n".join(p.tail)
        for p in processes
        if p.returncode is not None
    )


async def drained(
    db: AsyncDatabase[Document],
    tenant: str,
    event_ids: list[str],
    processes: list[ManagedProcess],
) -> None:
    """Poll until every event is stored and projected (bounded), failing if a process died."""
    deadline = asyncio.get_running_loop().time() + DRAIN_SECONDS
    done = 0
    while asyncio.get_running_loop().time() < deadline:
        if crashed := _crashed(processes):
            pytest.fail(f"a timeline process died:\n{crashed}")
        done = await db["interactions"].count_documents(
            {"tenant": tenant, "event_id": {"$in": event_ids}, "projected": True}
        )
        if done == len(event_ids):
            return
        await asyncio.sleep(0.2)
    tails = "\n".join(f"--- {p.name}\n" + "\n".join(list(p.tail)[-15:]) for p in processes)
    pytest.fail(f"{len(event_ids) - done} of {len(event_ids)} events not recorded\n{tails}")


async def dead_letters(js: JetStreamContext, tenant: str) -> list[str]:
    """Errors of the dead letters of this tenant."""
    errors: list[str] = []
    seq = 1
    while True:
        try:
            msg = await js.get_msg(
                DEAD_LETTER_STREAM, seq=seq, subject=f"dlq.interactions.{tenant}.>", next=True
            )
        except NotFoundError:
            return errors
        errors.append((msg.headers or {}).get("Tsunagu-Error", "?"))
        assert msg.seq is not None
        seq = msg.seq + 1


@dataclass
class Snapshot:
    """What a timeline database holds for one tenant, checked for its invariants."""

    customers: dict[str, Document]
    placed: dict[str, str]  # event id → customer id
    identities: dict[tuple[str, str], str]  # identity key → live customer id

    @property
    def partition(self) -> set[frozenset[str]]:
        groups: dict[str, set[str]] = {}
        for event_id, customer_id in self.placed.items():
            groups.setdefault(customer_id, set()).add(event_id)
        return {frozenset(g) for g in groups.values()}


async def snapshot(db: AsyncDatabase[Document], tenant: str, event_ids: list[str]) -> Snapshot:
    """Read the tenant's store and check what must hold whatever the order of events."""
    customers = {d["_id"]: d async for d in db["customers"].find({"tenant": tenant})}
    live = {cid for cid, d in customers.items() if not d.get("merged_into")}
    assert all(customers[c]["status"] == "active" for c in live)

    def follow(customer_id: str) -> str:
        seen = [customer_id]
        while (doc := customers.get(seen[-1])) is not None and doc.get("merged_into"):
            seen.append(doc["merged_into"])
            assert len(seen) < 40, f"merge cycle {seen}"
        return seen[-1]

    docs = [d async for d in db["interactions"].find({"tenant": tenant}, {"raw": 0})]
    ids = [d["event_id"] for d in docs]
    assert sorted(ids) == sorted(event_ids), "every event stored exactly once, nothing else"
    placed = {d["event_id"]: d["customer_id"] for d in docs}
    on_dead = {
        e: (c, customers[c].get("merged_into") if c in customers else "missing")
        for e, c in placed.items()
        if c not in live
    }
    assert not on_dead, f"interactions left on merged or missing customers: {on_dead}"
    assert all(d["projected"] for d in docs)

    counts: dict[str, dict[str, int]] = {}
    for d in docs:
        by_channel = counts.setdefault(d["customer_id"], {})
        by_channel[d["channel"]] = by_channel.get(d["channel"], 0) + 1
    wrong = {
        c: (customers[c].get("interaction_count"), sum(counts.get(c, {}).values()))
        for c in live
        if customers[c].get("interaction_count") != sum(counts.get(c, {}).values())
        or customers[c].get("by_channel", {}) != counts.get(c, {})
    }
    assert not wrong, f"customer counts (stored, in the log) differ: {wrong}"
    empty = sorted(live - set(counts))
    assert not empty, f"live customers without a single interaction: {empty}"

    identity_docs = [d async for d in db["identities"].find({"tenant": tenant})]
    identities = {(d["kind"], d["value"]): follow(d["customer_id"]) for d in identity_docs}
    dangling = [
        f"{d['kind']}:{d['value']} → {d['customer_id']} (claimed by event {d['first_event_id']})"
        for d in identity_docs
        if follow(d["customer_id"]) not in live
    ]
    assert not dangling, f"identities owned by no live customer: {dangling}"
    unfinished = await db["merges"].count_documents(
        {"tenant": tenant, "status": {"$in": ["pending", "splitting"]}}
    )
    assert unfinished == 0, "merges or splits left half-done"
    return Snapshot(customers=customers, placed=placed, identities=identities)


def check_people(snap: Snapshot, people: list[Person]) -> None:
    """Each person's events on one live customer, which owns every identifier of the person."""
    for person in people:
        events = [e.event_id for e in [*person.events, *person.late]]
        on = {snap.placed[e] for e in events}
        assert len(on) == 1, f"one person's events on {len(on)} customers: {on}"
        owners = {snap.identities.get(k) for k in person.keys}
        assert owners == on, f"identifiers {sorted(person.keys)} resolve to {owners}, not {on}"


# -- the test ---------------------------------------------------------------------------------


@dataclass
class Streamed:
    people: list[Person]
    event_ids: list[str]
    groups: set[frozenset[str]]  # the expected partition of every event into customers
    fixed: dict[str, str]  # events whose customer id is known in advance → that id


async def publish(js: JetStreamContext, interactions: list[pb.Interaction]) -> None:
    publisher = InteractionPublisher(js, ack_timeout=10, signer=session_action_keys().signer)
    outcomes = await publisher.publish_many(interactions)
    failed = [o for o in outcomes if not isinstance(o, Published)]
    assert not failed, failed


async def stream_the_race(
    js: JetStreamContext,
    db: AsyncDatabase[Document],
    tenant: str,
    replicas: list[ManagedProcess],
    rng: random.Random,
) -> Streamed:
    # Known customers for the agent's actions, settled before the race (their ids are then
    # the same in any order of delivery): two strangers to merge by hand, and one automatic
    # merge (call from P, email from E, then an email with both) for the agent to split.
    stranger_a = email_from(tenant, "stranger.a@example.jp", T0 - timedelta(days=3))
    stranger_b = email_from(tenant, "stranger.b@example.jp", T0 - timedelta(days=3, hours=-1))
    split_call = call_from(tenant, "03-5555-0001", T0 - timedelta(days=2, hours=6))
    split_email = email_from(tenant, "split@example.jp", T0 - timedelta(days=2, hours=5))
    setup = [stranger_a, stranger_b, split_call, split_email]
    await publish(js, setup)
    await drained(db, tenant, [e.event_id for e in setup], replicas)
    split_link = email_from(
        tenant, "split@example.jp", T0 - timedelta(days=2, hours=4), phone_id("03-5555-0001")
    )
    await publish(js, [split_link])
    await drained(db, tenant, [split_link.event_id], replicas)
    merge = await db["merges"].find_one(
        {"tenant": tenant, "evidence.event_id": split_link.event_id}
    )
    assert merge is not None
    assert merge["status"] == "done"
    call_customer = customer_id_for(tenant, split_call.event_id)
    email_customer = customer_id_for(tenant, split_email.event_id)
    assert merge["survivor_id"] == call_customer  # the one first seen
    assert merge["merged_ids"] == [email_customer]

    # The race, with the agent's manual merge and split somewhere in it.
    strangers = [customer_id_for(tenant, e.event_id) for e in (stranger_a, stranger_b)]
    manual_merge = agent_action(tenant, strangers[0], pb.KIND_CUSTOMERS_MERGED)
    manual_merge.agent_action.merge_customers.customer_ids.extend(strangers)
    manual_merge.agent_action.merge_customers.reason = "same person, told us on the phone"
    split = agent_action(tenant, call_customer, pb.KIND_MERGE_SPLIT)
    split.agent_action.split_merge.merge_id = merge["_id"]
    split.agent_action.split_merge.reason = "different people sharing a phone"
    people = (
        [chain_person(tenant, i) for i in range(CHAIN_PEOPLE)]
        + [triple_person(tenant, i) for i in range(TRIPLE_PEOPLE)]
        + [attach_person(tenant, i) for i in range(ATTACH_PEOPLE)]
    )
    race = shuffled(people, [manual_merge, split], rng)
    await publish(js, race)
    all_events = [*setup, split_link, *race]
    event_ids = [e.event_id for e in all_events]
    await drained(db, tenant, event_ids, replicas)

    groups = {frozenset(e.event_id for e in [*p.events, *p.late]) for p in people}
    groups |= {
        frozenset({stranger_a.event_id, stranger_b.event_id, manual_merge.event_id}),
        frozenset({split_call.event_id, split_link.event_id, split.event_id}),
        frozenset({split_email.event_id}),
    }
    survivor = strangers[0]  # the one first seen
    fixed = {
        stranger_a.event_id: survivor,
        stranger_b.event_id: survivor,
        manual_merge.event_id: survivor,
        split_call.event_id: call_customer,
        split_link.event_id: call_customer,
        split.event_id: call_customer,
        split_email.event_id: email_customer,
    }
    return Streamed(people=people, event_ids=event_ids, groups=groups, fixed=fixed)


async def test_two_replicas_racing_keep_one_customer_per_person_and_replay_gives_the_same(
    nats_server: NatsServer, mongodb_uri: str, tenant: str
) -> None:
    seed = int(os.environ.get("TSUNAGU_RACE_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    log.info("race seed %d (set TSUNAGU_RACE_SEED to repeat the order)", seed)
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_streams(js)
    run = uuid.uuid4().hex[:8]
    live_db, replay_dbs = f"race_{run}", [f"replay_{run}_a", f"replay_{run}_b"]
    consumers = [f"race-{tenant}", f"replay-{tenant}-a", f"replay-{tenant}-b"]

    def started(name: str, database: str, consumer: str, batch: int) -> Any:
        return timeline_process(
            name,
            nats_url=nats_server.url,
            mongodb_uri=mongodb_uri,
            database=database,
            consumer=consumer,
            tenant=tenant,
            fetch_batch=batch,
        )

    try:
        async with AsyncExitStack() as stack:
            replicas = list(
                await asyncio.gather(
                    *(
                        stack.enter_async_context(
                            started(f"timeline-{n}", live_db, consumers[0], 3)
                        )
                        for n in (1, 2)
                    )
                )
            )
            streamed = await stream_the_race(js, client[live_db], tenant, replicas, rng)
            info = await js.consumer_info(INTERACTIONS_STREAM, consumers[0])
            assert info.num_pending == 0, info
            assert info.num_ack_pending == 0, info
            merges = {p.name: MERGES_BY_PROCESS.get(p.name, 0) for p in replicas}
            assert all(merges.values()), f"both replicas must merge customers: {merges}"
        live = await snapshot(client[live_db], tenant, streamed.event_ids)
        assert await dead_letters(js, tenant) == [], f"seed {seed}"
        check_people(live, streamed.people)
        assert live.partition == streamed.groups, f"seed {seed}"
        for event_id, customer_id in streamed.fixed.items():
            assert live.placed[event_id] == customer_id

        # Replay the whole stream, one replica each, into two empty databases.
        async with AsyncExitStack() as stack:
            replayers = list(
                await asyncio.gather(
                    *(
                        stack.enter_async_context(started(f"replay-{i}", db, consumer, 64))
                        for i, (db, consumer) in enumerate(
                            zip(replay_dbs, consumers[1:], strict=True)
                        )
                    )
                )
            )
            for db in replay_dbs:
                await drained(client[db], tenant, streamed.event_ids, replayers)
        replays = [await snapshot(client[db], tenant, streamed.event_ids) for db in replay_dbs]
        assert await dead_letters(js, tenant) == [], f"seed {seed}"
        for replay in replays:
            check_people(replay, streamed.people)
            assert replay.partition == live.partition, f"seed {seed}"
            for event_id, customer_id in streamed.fixed.items():
                assert replay.placed[event_id] == customer_id
        assert replays[0].placed == replays[1].placed, "one replica: the same customer ids"
        merged = [
            {c: sorted(d.get("merged_ids", [])) for c, d in r.customers.items()} for r in replays
        ]
        assert merged[0] == merged[1]
    finally:
        for consumer in consumers:
            with suppress(NotFoundError):
                await js.delete_consumer(INTERACTIONS_STREAM, consumer)
        for db in [live_db, *replay_dbs]:
            await client.drop_database(db)
        await client.close()
        await nc.close()
