"""Identity resolution decisions against in-memory stores: create, attach, merge, refuse."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import cast

import pytest

from services.timeline.errors import ResolutionConflictError
from services.timeline.identity.documents import IdentityDoc
from services.timeline.identity.policy import (
    BLOCKLISTED,
    IdentityKey,
    IdentityPolicy,
    IdentityRules,
)
from services.timeline.identity.resolver import IdentityResolver, Resolution
from services.timeline.profiles.model import CustomerDoc
from services.timeline.profiles.profile import customer_id_for
from services.timeline.retry import MAX_ATTEMPTS
from tests.unit.memory_stores import MemoryCases, MemoryCustomers, MemoryIdentities, MemoryLog

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
TENANT = "acme"
PHONE = ("phone", "+819012345678")
EMAIL = ("email", "hanako@example.jp")
OTHER_EMAIL = ("email", "taro@example.jp")


@dataclass
class World:
    customers: MemoryCustomers = field(default_factory=MemoryCustomers)
    log: MemoryLog = field(default_factory=MemoryLog)
    cases: MemoryCases = field(default_factory=MemoryCases)
    identities: MemoryIdentities = field(default_factory=MemoryIdentities)
    rules: IdentityRules = field(default_factory=IdentityRules)

    @property
    def resolver(self) -> IdentityResolver:
        policy = IdentityPolicy.from_rules(self.rules, region="JP")
        return IdentityResolver(
            self.identities,
            customers=self.customers,
            interactions=self.log,
            cases=self.cases,
            clock=lambda: T0 + timedelta(days=1),
            policy_for=lambda _tenant: policy,
        )


async def resolve(
    world: World,
    event_id: str,
    *keys: tuple[str, str],
    minutes: int = 0,
    may_merge: bool = True,
    verified: bool = True,
) -> tuple[str, list[str], bool]:
    """Resolve an event; its identifiers are verified by the channel unless told otherwise."""
    resolution = await world.resolver.resolve(
        tenant=TENANT,
        event_id=event_id,
        occurred_at=T0 + timedelta(minutes=minutes),
        keys=list(keys),
        verified=list(keys) if verified else [],
        may_merge=may_merge,
    )
    return resolution.customer_id, resolution.merged_ids, resolution.merge_needed


async def test_an_unknown_identifier_creates_a_customer_with_a_replay_stable_id() -> None:
    world = World()
    customer_id, merged, _ = await resolve(world, "e1", PHONE)
    assert customer_id == customer_id_for(TENANT, "e1")
    assert merged == []
    assert (await world.identities.identity_docs(TENANT, [PHONE]))[PHONE][
        "customer_id"
    ] == customer_id


async def test_a_known_identifier_attaches_and_claims_the_new_ones() -> None:
    world = World()
    first, _, _ = await resolve(world, "e1", PHONE)
    second, _, _ = await resolve(world, "e2", PHONE, EMAIL, minutes=5)
    assert second == first
    assert len(world.customers.docs) == 1
    owners = await world.identities.identity_docs(TENANT, [EMAIL])
    assert owners[EMAIL]["customer_id"] == first


async def test_linking_two_customers_asks_for_a_merge_first_and_writes_nothing() -> None:
    world = World()
    await resolve(world, "e1", PHONE)
    await resolve(world, "e2", EMAIL, minutes=5)
    before = (dict(world.customers.docs), dict(world.identities.identities))
    customer_id, merged, merge_needed = await resolve(
        world, "e3", PHONE, EMAIL, minutes=10, may_merge=False
    )
    assert (customer_id, merged, merge_needed) == ("", [], True)
    assert (world.customers.docs, world.identities.identities) == before
    assert world.identities.merges == {}


async def test_a_merge_keeps_the_customer_seen_first_and_marks_the_other_merged() -> None:
    world = World()
    first, _, _ = await resolve(world, "e1", PHONE)
    later, _, _ = await resolve(world, "e2", EMAIL, minutes=5)
    customer_id, merged, merge_needed = await resolve(world, "e3", PHONE, EMAIL, minutes=10)
    assert (customer_id, merged, merge_needed) == (first, [later], False)
    assert world.customers.docs[later]["merged_into"] == first
    assert world.customers.docs[first]["merged_ids"] == [later]
    [entry] = world.identities.merges.values()
    assert entry["status"] == "done"
    owners = await world.identities.identity_docs(TENANT, [PHONE, EMAIL])
    assert {doc["customer_id"] for doc in owners.values()} == {first}


async def test_customers_split_apart_are_not_merged_again_automatically() -> None:
    world = World()
    phone_customer, _, _ = await resolve(world, "e1", PHONE)
    email_customer, _, _ = await resolve(world, "e2", EMAIL, minutes=5)
    world.customers.docs[email_customer]["separated_from"] = [phone_customer]
    customer_id, merged, merge_needed = await resolve(world, "e3", PHONE, EMAIL, minutes=10)
    # The email is the stronger identifier: the event lands on its customer, unmerged.
    assert (customer_id, merged, merge_needed) == (email_customer, [], False)
    assert "merged_into" not in world.customers.docs[phone_customer]
    assert world.identities.merges == {}


async def test_a_blocklisted_identifier_matches_nobody() -> None:
    world = World(rules=IdentityRules(blocklist=["email:hanako@example.jp"]))
    first, _, _ = await resolve(world, "e1", EMAIL)
    resolution = await world.resolver.resolve(
        tenant=TENANT, event_id="e2", occurred_at=T0, keys=[EMAIL]
    )
    assert resolution.customer_id not in {"", first}
    assert resolution.protected == {EMAIL: BLOCKLISTED}
    assert await world.identities.identity_docs(TENANT, [EMAIL]) == {}


async def test_losing_a_claim_to_another_writer_attaches_to_the_winner() -> None:
    world = World()
    winner, _, _ = await resolve(world, "e1", OTHER_EMAIL)
    world.identities.claimed_by_others[PHONE] = winner
    customer_id, _, _ = await resolve(world, "e2", PHONE, minutes=5)
    assert customer_id == winner
    # The customer created for the lost claim held nothing and is gone again.
    assert set(world.customers.docs) == {winner}


async def test_identifiers_that_keep_changing_owner_give_up_after_the_retry_budget() -> None:
    world = World()
    world.identities.lose_next("claim", times=MAX_ATTEMPTS)
    with pytest.raises(ResolutionConflictError):
        await resolve(world, "e1", PHONE)
    assert world.identities.pending["claim"] == 0
    # One more round would have won: the budget is exactly MAX_ATTEMPTS rounds.
    world.identities.lose_next("claim", times=MAX_ATTEMPTS - 1)
    customer_id, _, _ = await resolve(world, "e2", PHONE)
    assert customer_id == customer_id_for(TENANT, "e2")


class CountingIdentities(MemoryIdentities):
    """Counts identity reads, to show what a second resolution reads again."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def identity_docs(
        self, tenant: str, keys: Sequence[IdentityKey]
    ) -> dict[IdentityKey, IdentityDoc]:
        self.reads += 1
        return await super().identity_docs(tenant, keys)


async def merge_in_two_steps(
    world: World, *keys: tuple[str, str], between: Callable[[], None] = lambda: None
) -> Resolution:
    """Resolve "e3" as the recorder does: ask, let `between` happen, then merge from the lookup."""
    resolver = world.resolver
    resolve_e3 = partial(
        resolver.resolve,
        tenant=TENANT,
        event_id="e3",
        occurred_at=T0 + timedelta(minutes=10),
        keys=list(keys),
        verified=list(keys),
    )
    asked = await resolve_e3(may_merge=False)
    assert asked.merge_needed
    assert asked.lookup is not None
    between()
    return await resolve_e3(may_merge=True, lookup=asked.lookup)


async def test_the_merge_after_merge_needed_starts_from_what_the_first_resolution_read() -> None:
    identities = CountingIdentities()
    world = World(identities=identities)
    first, _, _ = await resolve(world, "e1", PHONE)
    later, _, _ = await resolve(world, "e2", EMAIL, minutes=5)
    reads: list[int] = []
    merged = await merge_in_two_steps(
        world, PHONE, EMAIL, between=lambda: reads.append(identities.reads)
    )
    assert (merged.customer_id, merged.merged_ids) == (first, [later])
    assert identities.reads == reads[0]  # the identities were not read again


async def test_a_lost_race_after_merge_needed_reads_everything_afresh() -> None:
    identities = CountingIdentities()
    world = World(identities=identities)
    first, _, _ = await resolve(world, "e1", PHONE)
    await resolve(world, "e2", EMAIL, minutes=5)
    reads: list[int] = []

    def another_writer_claims_the_new_address() -> None:
        identities.claimed_by_others[OTHER_EMAIL] = first
        reads.append(identities.reads)

    merged = await merge_in_two_steps(
        world, PHONE, EMAIL, OTHER_EMAIL, between=another_writer_claims_the_new_address
    )
    assert merged.customer_id == first
    assert identities.reads > reads[0]  # the retry did not trust the stale lookup
    owners = await identities.identity_docs(TENANT, [PHONE, EMAIL, OTHER_EMAIL])
    assert {doc["customer_id"] for doc in owners.values()} == {first}


async def test_survivor_ids_follow_merge_chains_as_survivors_do_reading_only_pointers() -> None:
    world = World()
    for doc in (
        {"_id": "a", "tenant": TENANT, "merged_into": "b", "interaction_count": 1},
        {"_id": "b", "tenant": TENANT, "merged_into": "c", "interaction_count": 1},
        {"_id": "c", "tenant": TENANT, "interaction_count": 3},
        {"_id": "d", "tenant": TENANT, "interaction_count": 1},
    ):
        await world.customers.insert(cast("CustomerDoc", doc))
    wanted = {"a", "b", "c", "d", "missing"}
    ids = await world.resolver.survivor_ids(TENANT, wanted)
    assert ids == {"a": "c", "b": "c", "c": "c", "d": "d"}
    assert ids == (await world.resolver.survivors(TENANT, wanted))[0]
    assert await world.resolver.survivor_ids("other-tenant", wanted) == {}
