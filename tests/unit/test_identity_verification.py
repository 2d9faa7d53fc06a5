"""Unverified identifiers link no customers: they land on one and suggest the merge instead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.timeline.identity.policy import IdentityRules
from services.timeline.identity.suggestions import UNVERIFIED_LINK
from services.timeline.interactions.tally import Tally
from services.timeline.profiles.model import CustomerDoc
from services.timeline.profiles.profile import Contact, apply_contact, merged_profile, new_customer
from services.timeline.settings import TimelineSettings
from services.timeline.store.documents import IdentifierDoc
from tests.unit.test_identity_resolver import EMAIL, PHONE, TENANT, World, resolve

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
COOKIE = ("chat_visitor", "cookie-mallory")


def _vouch(world: World, customer_id: str, key: tuple[str, str]) -> None:
    """What projecting a verified contact leaves on the profile."""
    kind, value = key
    world.customers.docs[customer_id]["identifiers"] = [
        {"kind": kind, "value": value, "verified": True}
    ]


def _suggested_pairs(world: World) -> list[tuple[list[str], list[str]]]:
    return [(s["customer_ids"], s["signals"]) for s in world.identities.suggestions.values()]


async def test_an_unverified_link_of_two_customers_suggests_the_merge_and_merges_nothing() -> None:
    world = World()
    phone_customer, _, _ = await resolve(world, "e1", PHONE)
    email_customer, _, _ = await resolve(world, "e2", EMAIL, minutes=5)

    customer_id, merged, merge_needed = await resolve(
        world, "e3", PHONE, EMAIL, minutes=10, verified=False, may_merge=False
    )

    assert (customer_id, merged, merge_needed) == (email_customer, [], False)  # email > phone
    assert world.identities.merges == {}
    assert "merged_into" not in world.customers.docs[phone_customer]
    assert _suggested_pairs(world) == [
        (sorted([phone_customer, email_customer]), [UNVERIFIED_LINK])
    ]


async def test_an_unverified_link_lands_on_the_owner_of_the_verified_identifier() -> None:
    world = World()
    phone_customer, _, _ = await resolve(world, "e1", PHONE)
    await resolve(world, "e2", EMAIL, minutes=5)
    resolution = await world.resolver.resolve(
        tenant=TENANT,
        event_id="e3",
        occurred_at=T0 + timedelta(minutes=10),
        keys=[PHONE, EMAIL],
        verified=[PHONE],
    )
    # The phone is the weaker kind, but it is the one the channel vouched for.
    assert (resolution.customer_id, resolution.merged_ids) == (phone_customer, [])


async def test_an_unverified_identifier_gives_a_verified_customer_no_new_identifiers() -> None:
    world = World()
    alice, _, _ = await resolve(world, "e1", EMAIL)
    _vouch(world, alice, EMAIL)

    intruder, _, _ = await resolve(world, "e2", EMAIL, COOKIE, minutes=5, verified=False)

    assert intruder not in {"", alice}
    owners = await world.identities.identity_docs(TENANT, [EMAIL, COOKIE])
    assert (owners[EMAIL]["customer_id"], owners[COOKIE]["customer_id"]) == (alice, intruder)
    assert _suggested_pairs(world) == [(sorted([alice, intruder]), [UNVERIFIED_LINK])]


async def test_a_replayed_event_lands_on_the_customer_of_its_own_it_got_before() -> None:
    world = World()
    alice, _, _ = await resolve(world, "e1", EMAIL)
    _vouch(world, alice, EMAIL)
    intruder, _, _ = await resolve(world, "e2", EMAIL, COOKIE, minutes=5, verified=False)
    # Redelivered after its identifiers were claimed but before it was stored.
    again, _, _ = await resolve(world, "e2", EMAIL, COOKIE, minutes=5, verified=False)
    assert again == intruder


async def test_an_unverified_identifier_still_attaches_to_an_unverified_customer() -> None:
    world = World()
    first, _, _ = await resolve(world, "e1", EMAIL, verified=False)
    second, _, _ = await resolve(world, "e2", EMAIL, COOKIE, minutes=5, verified=False)
    assert second == first
    assert world.identities.suggestions == {}


async def test_an_unverified_contact_with_known_identifiers_only_attaches_unsuggested() -> None:
    world = World()
    alice, _, _ = await resolve(world, "e1", EMAIL)
    _vouch(world, alice, EMAIL)
    customer_id, _, _ = await resolve(world, "e2", EMAIL, minutes=5, verified=False)
    assert customer_id == alice
    assert world.identities.suggestions == {}


async def test_a_tenant_may_let_a_kind_link_customers_unverified() -> None:
    world = World(rules=IdentityRules(merge_unverified=["email", "phone"]))
    phone_customer, _, _ = await resolve(world, "e1", PHONE)
    email_customer, _, _ = await resolve(world, "e2", EMAIL, minutes=5)
    customer_id, merged, _ = await resolve(world, "e3", PHONE, EMAIL, minutes=10, verified=False)
    assert (customer_id, merged) == (phone_customer, [email_customer])


def test_an_unknown_kind_to_merge_unverified_fails_start_up_naming_it() -> None:
    with pytest.raises(ValidationError, match="emial"):
        IdentityRules(merge_unverified=["emial"])


def _customer(name: str = "", *, name_verified: bool = False) -> CustomerDoc:
    doc = new_customer(tenant=TENANT, customer_id="cus_1", created_at=T0, first_contact_at=T0)
    doc["display_name"], doc["name_verified"] = name, name_verified
    return doc


def _contact(name: str, *, minutes: int, verified: bool) -> Contact:
    ident: IdentifierDoc = {"kind": "email", "value": "alice@example.jp", "verified": verified}
    return Contact(
        channel="web",
        occurred_at=T0 + timedelta(minutes=minutes),
        display_name=name,
        identifiers=(ident,),
        event_id=f"e{minutes}",
        verified=verified,
    )


def test_an_unverified_contact_never_renames_a_verified_name() -> None:
    alice = apply_contact(_customer(), _contact("Alice", minutes=1, verified=True))
    after = apply_contact(alice, _contact("Mallory", minutes=2, verified=False))
    assert (after["display_name"], after["name_verified"]) == ("Alice", True)
    # A verified sighting stays verified when an unverified one repeats the identifier.
    assert after["identifiers"][0].get("verified") is True


def test_an_unverified_name_gives_way_to_a_verified_one_even_an_older_one() -> None:
    typed = apply_contact(_customer(), _contact("Mallory", minutes=5, verified=False))
    assert (typed["display_name"], typed["name_verified"]) == ("Mallory", False)
    after = apply_contact(typed, _contact("Alice", minutes=1, verified=True))
    assert (after["display_name"], after["name_verified"]) == ("Alice", True)
    # Between unverified names the newest still wins, as before.
    newer = apply_contact(typed, _contact("Mal", minutes=9, verified=False))
    assert newer["display_name"] == "Mal"


def test_a_merge_keeps_a_verified_name_over_the_survivors_unverified_one() -> None:
    survivor = _customer("Mallory")
    loser = _customer("Alice", name_verified=True) | {"_id": "cus_2"}
    merged = merged_profile(
        survivor, [loser], tally=Tally([], {}, first_contact_at=None, last_contact_at=None)
    )
    assert (merged["display_name"], merged["name_verified"]) == ("Alice", True)


def test_merge_unverified_is_read_from_the_environment_once_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TSUNAGU_TIMELINE_IDENTITY", '{"merge_unverified": ["external_crm_id"]}')
    monkeypatch.setenv("TSUNAGU_TIMELINE_TENANT_IDENTITY", '{"strict": {}}')
    settings = TimelineSettings()
    assert settings.identity_for("acme").merge_unverified == {"external_crm_id"}
    assert settings.identity_for("strict").merge_unverified == frozenset()  # whole-rule override
    monkeypatch.setenv("TSUNAGU_TIMELINE_IDENTITY", '{"merge_unverified": ["cookie"]}')
    with pytest.raises(ValidationError, match="cookie"):
        TimelineSettings()
