"""A batch's read-ahead: which events may resolve against it, and what one read stands for."""

from __future__ import annotations

from datetime import UTC, datetime

from services.timeline.identity.documents import IdentityDoc
from services.timeline.identity.policy import IdentityKey
from services.timeline.identity.resolver import Lookup, Resolution
from services.timeline.profiles.profile import new_customer
from services.timeline.read_ahead import ReadAhead

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PHONE: IdentityKey = ("phone", "+819011112222")
EMAIL: IdentityKey = ("email", "a@example.jp")
VISITOR: IdentityKey = ("chat_visitor", "v1")


def _identity(key: IdentityKey, customer_id: str, *presenters: str) -> IdentityDoc:
    doc: IdentityDoc = {"_id": key[1], "kind": key[0], "value": key[1], "customer_id": customer_id}
    if presenters:
        doc["customer_ids"] = list(presenters)
    return doc


def _batch_read() -> Lookup:
    """Phone → cus_a (merged into cus_b), email → cus_c, shared by more than the limit."""
    live = {
        c: new_customer(tenant="acme", customer_id=c, created_at=T0, first_contact_at=T0)
        for c in ("cus_b", "cus_c")
    }
    return Lookup(
        docs={
            PHONE: _identity(PHONE, "cus_a"),
            EMAIL: _identity(EMAIL, "cus_c", "cus_c", "cus_x", "cus_y"),
        },
        target={"cus_a": "cus_b", "cus_c": "cus_c"},
        live=live,
    )


def test_one_events_share_of_the_batch_read_is_what_reading_its_keys_finds() -> None:
    lookup = _batch_read()

    phone_only = lookup.narrowed([PHONE, VISITOR], limit=2)
    assert set(phone_only.docs) == {PHONE}
    assert phone_only.target == {"cus_a": "cus_b"}
    assert set(phone_only.live) == {"cus_b"}

    # An identifier more customers presented than allowed leads nowhere, as in a read.
    email_only = lookup.narrowed([EMAIL], limit=2)
    assert set(email_only.docs) == {EMAIL}
    assert email_only.target == {}
    assert email_only.live == {}
    assert lookup.narrowed([EMAIL], limit=3).target == {"cus_c": "cus_c"}


def test_an_event_that_only_attached_leaves_the_batch_read_usable() -> None:
    ahead = ReadAhead(lookups={"acme": _batch_read()})

    ahead.note("acme", [PHONE], Resolution(customer_id="cus_b"))

    assert ahead.lookup_for("acme", [PHONE]) is not None
    assert ahead.customers("acme").keys() == {"cus_b", "cus_c"}


def test_an_event_that_wrote_identities_or_customers_makes_later_events_read_afresh() -> None:
    creating = Resolution(customer_id="cus_new", created=True)
    merging = Resolution(customer_id="cus_b", merged_ids=["cus_c"])
    protected = Resolution(customer_id="cus_b", protected={EMAIL: "shared"})
    claiming = Resolution(customer_id="cus_b")  # attached, and claimed the new visitor id
    elsewhere = Resolution(customer_id="cus_z")  # lost a race: another writer's customer
    for resolution, keys in [
        (creating, [VISITOR]),
        (merging, [PHONE, EMAIL]),
        (protected, [PHONE, EMAIL]),
        (claiming, [PHONE, VISITOR]),
        (elsewhere, [PHONE]),
    ]:
        ahead = ReadAhead(lookups={"acme": _batch_read()})
        ahead.note("acme", keys, resolution)
        assert all(ahead.lookup_for("acme", [key]) is None for key in keys), resolution
        assert ahead.lookup_for("other", []) is None


def test_keys_touched_in_one_tenant_leave_another_tenants_read_alone() -> None:
    ahead = ReadAhead(lookups={"acme": _batch_read(), "globex": _batch_read()})

    ahead.note("acme", [PHONE], Resolution(customer_id="cus_new", created=True))

    assert ahead.lookup_for("acme", [PHONE]) is None
    assert ahead.lookup_for("globex", [PHONE]) is not None
    assert ahead.lookup_for("acme", [EMAIL]) is not None


def test_forgetting_a_written_customer_touches_every_key_that_led_to_it_and_only_those() -> None:
    ahead = ReadAhead(lookups={"acme": _batch_read()})

    # The phone's identity names cus_a, merged into cus_b: writing cus_b makes it stale.
    ahead.forget("acme", {"cus_b"})

    assert ahead.lookup_for("acme", [PHONE]) is None
    assert ahead.lookup_for("acme", [PHONE, EMAIL]) is None
    assert ahead.lookup_for("acme", [EMAIL]) is not None
    assert set(ahead.customers("acme")) == {"cus_c"}
    assert ahead.lookups["acme"].target == {"cus_c": "cus_c"}
    # Another tenant's read and an empty forget change nothing.
    ahead.forget("other", {"cus_c"})
    ahead.forget("acme", set())
    assert ahead.lookup_for("acme", [EMAIL]) is not None


def test_a_customer_held_as_written_is_a_base_for_profile_writes_but_its_keys_stay_touched() -> (
    None
):
    ahead = ReadAhead(lookups={"acme": _batch_read()})
    ahead.forget("acme", {"cus_b"})
    merged = new_customer(tenant="acme", customer_id="cus_b", created_at=T0, first_contact_at=T0)
    merged["version"] = 7

    ahead.hold("acme", merged)

    assert ahead.customers("acme")["cus_b"] == merged
    assert ahead.lookup_for("acme", [PHONE]) is None  # still read afresh
    assert ahead.lookups["acme"].target == {"cus_c": "cus_c"}
    # Written again (a flush): gone again. Another tenant without a read holds nothing.
    ahead.forget("acme", {"cus_b"})
    assert "cus_b" not in ahead.customers("acme")
    ahead.hold("other", merged)
    assert ahead.customers("other") == {}
