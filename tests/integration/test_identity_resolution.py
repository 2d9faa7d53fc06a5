"""Identity resolution against the real store: protection, explainable merges, exact splits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from services.timeline.bootstrap import build_core
from services.timeline.errors import PermanentError
from services.timeline.identity.documents import MergeEntry
from services.timeline.identity.policy import IdentityPolicy, IdentityRules
from services.timeline.profiles.model import CustomerDoc
from services.timeline.recorder import Recorded, TimelineRecorder
from services.timeline.stores import TimelineStore
from tests import builders
from tests.integration.timeline_db import timeline_db
from tsunagu.v1 import interaction_pb2 as pb

T0 = datetime.now(UTC) - timedelta(days=5)
Changes = list[tuple[str, MergeEntry]]


@pytest.fixture
async def store(mongodb_uri: str, database_name: str) -> AsyncIterator[TimelineStore]:
    async with timeline_db(mongodb_uri, database_name) as store:
        yield store


@pytest.fixture
def changes() -> Changes:
    return []


@pytest.fixture
def make_recorder(store: TimelineStore, changes: Changes) -> Callable[..., TimelineRecorder]:
    """A recorder with the given identity rules for every tenant; it notes identity changes."""

    async def announce(entry: MergeEntry, change: str) -> None:
        changes.append((change, entry))

    def make(**rules: object) -> TimelineRecorder:
        policy = IdentityPolicy.from_rules(IdentityRules(**rules), region="JP")
        return build_core(
            store, identity_for=lambda _tenant: policy, announce_identity=announce
        ).recorder

    return make


@pytest.fixture
def recorder(make_recorder: Callable[..., TimelineRecorder]) -> TimelineRecorder:
    return make_recorder()


def ident(kind: pb.IdentifierKind.ValueType, value: str) -> pb.Identifier:
    return pb.Identifier(kind=kind, value=value)


def form(tenant: str, *, at: datetime, name: str = "", **fields: str) -> pb.Interaction:
    """A web form whose fields become identifiers the way web ingestion extracts them."""
    interaction = builders.chat(tenant, visitor=f"form-{fields.get('email', name)}", at=at)
    del interaction.identifiers[:]
    interaction.channel = pb.CHANNEL_WEB
    interaction.kind = pb.KIND_FORM_SUBMISSION
    interaction.actor.display_name = name
    interaction.web_form.form_id = "contact"
    for key, value in fields.items():
        interaction.web_form.fields.add(name=key, value=value)
        if key == "email":
            interaction.identifiers.append(ident(pb.IDENTIFIER_KIND_EMAIL, value))
        if key == "phone":
            interaction.identifiers.append(ident(pb.IDENTIFIER_KIND_PHONE, value))
    return interaction


async def record(recorder: TimelineRecorder, *events: pb.Interaction) -> list[Recorded]:
    outcomes = await recorder.record_batch(list(events))
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    return [o for o in outcomes if isinstance(o, Recorded)]


async def owner(store: TimelineStore, tenant: str, event: pb.Interaction) -> str:
    found = await store.interactions.lookup_events(tenant, [event.event_id])
    assert len(found) == 1, f"event {event.event_id} not stored exactly once"
    return str(found[0]["customer_id"])


async def customer(store: TimelineStore, tenant: str, customer_id: str) -> CustomerDoc:
    return (await store.customers.get_customers(tenant, [customer_id]))[customer_id]


# -- normalisation before matching --------------------------------------------------------------


async def test_phone_written_three_ways_is_one_customer(
    recorder: TimelineRecorder, store: TimelineStore, tenant: str
) -> None:
    events = [
        builders.call(tenant, from_number=raw, call_id=f"c{i}", at=T0 + timedelta(minutes=i))
        for i, raw in enumerate(["+81 90-1234-5678", "(090) 1234 5678", "０９０１２３４５６７８"])
    ]
    for event, raw in zip(
        events, ["+81 90-1234-5678", "(090) 1234 5678", "０９０１２３４５６７８"], strict=False
    ):
        event.identifiers.append(ident(pb.IDENTIFIER_KIND_PHONE, raw))
    recorded = await record(recorder, *events)
    assert len({r.customer_id for r in recorded}) == 1


async def test_sub_addresses_stay_apart_unless_the_tenant_folds_them(
    make_recorder: Callable[..., TimelineRecorder], store: TimelineStore, tenant: str
) -> None:
    plain = form(tenant, at=T0, email="hanako@example.jp")
    tagged = form(tenant, at=T0 + timedelta(hours=1), email="Hanako+shop@example.jp")
    apart = await record(make_recorder(), plain, tagged)
    assert apart[0].customer_id != apart[1].customer_id

    other_tenant = f"{tenant}-fold"
    plain2 = form(other_tenant, at=T0, email="hanako@example.jp")
    tagged2 = form(other_tenant, at=T0 + timedelta(hours=1), email="Hanako+shop@example.jp")
    folded = await record(make_recorder(fold_email_subaddress=True), plain2, tagged2)
    assert folded[0].customer_id == folded[1].customer_id


async def test_identifiers_never_link_across_tenants(
    recorder: TimelineRecorder, store: TimelineStore, tenant: str
) -> None:
    mine = form(tenant, at=T0, email="same@example.jp", phone="090-5555-0000")
    theirs = form(f"{tenant}-other", at=T0, email="same@example.jp", phone="090-5555-0000")
    recorded = await record(recorder, mine, theirs)
    assert recorded[0].customer_id != recorded[1].customer_id
    assert recorded[0].merged_ids == recorded[1].merged_ids == []
    assert await store.customers.get_customers(tenant, [recorded[1].customer_id]) == {}


# -- merge protection ---------------------------------------------------------------------------


async def test_blocklisted_address_never_merges_and_the_event_lands_by_its_other_identifier(
    make_recorder: Callable[..., TimelineRecorder], store: TimelineStore, tenant: str
) -> None:
    recorder = make_recorder(blocklist=["email:info@shop.example", "phone:03-1234-5678"])
    sato = form(tenant, at=T0, email="info@shop.example", phone="090-1111-0001", name="佐藤")
    kato = form(tenant, at=T0 + timedelta(hours=1), email="kato@example.jp", phone="03-1234-5678")
    kato_again = form(
        tenant, at=T0 + timedelta(hours=2), email="kato@example.jp", phone="090-1111-0001"
    )
    shop_only = form(tenant, at=T0 + timedelta(hours=3), email="INFO@shop.example")
    first, second, _, fourth = await record(recorder, sato, kato, kato_again, shop_only)

    assert first.customer_id != second.customer_id
    # kato_again carries Sato's phone and Kato's e-mail: that is a real link, so they merge —
    # but only through those two; the blocklisted address and shop line linked nobody.
    assert fourth.customer_id not in {first.customer_id, second.customer_id}
    sato_doc = await customer(store, tenant, first.customer_id)
    protected = {(i["value"], i["protected"]) for i in sato_doc["identifiers"] if "protected" in i}
    assert ("info@shop.example", "blocklisted") in protected
    assert await store.identities.identity_docs(tenant, [("email", "info@shop.example")]) == {}


async def test_noreply_addresses_are_blocklisted_by_default(
    recorder: TimelineRecorder, tenant: str
) -> None:
    one = form(tenant, at=T0, email="noreply@shop.example", phone="090-2222-0001")
    two = form(tenant, at=T0 + timedelta(hours=1), email="noreply@shop.example")
    recorded = await record(recorder, one, two)
    assert recorded[0].customer_id != recorded[1].customer_id


async def test_identifier_that_joined_the_limit_of_customers_stops_merging_and_is_shared(
    make_recorder: Callable[..., TimelineRecorder], store: TimelineStore, tenant: str
) -> None:
    recorder = make_recorder(max_customers_per_identifier=2)
    family_line = "03-9999-0000"
    a = form(tenant, at=T0, email="a@example.jp", phone=family_line)
    b = form(tenant, at=T0 + timedelta(hours=1), email="b@example.jp")
    b_with_line = builders.verified(
        form(tenant, at=T0 + timedelta(hours=2), email="b@example.jp", phone=family_line)
    )
    c = form(tenant, at=T0 + timedelta(hours=3), email="c@example.jp")
    c_with_line = builders.verified(
        form(tenant, at=T0 + timedelta(hours=4), email="c@example.jp", phone=family_line)
    )
    line_only = form(tenant, at=T0 + timedelta(hours=5), phone=family_line)
    ra, rb, rb2, rc, rc2, rline = await record(
        recorder, a, b, b_with_line, c, c_with_line, line_only
    )

    assert rb2.merged_ids == [rb.customer_id]  # the line joined a and b: 2 customers, allowed
    assert rc2.customer_id == rc.customer_id  # a third would exceed the limit: no merge
    assert rc2.merged_ids == []
    # Now shared by three customers, the line identifies nobody: a call from it is new.
    assert rline.customer_id not in {ra.customer_id, rc.customer_id}
    key = ("phone", "+81399990000")
    presenters = (await store.identities.identity_docs(tenant, [key]))[key]["customer_ids"]
    assert {ra.customer_id, rb.customer_id, rc.customer_id} <= set(presenters)
    c_doc = await customer(store, tenant, rc.customer_id)
    assert {
        "kind": "phone",
        "value": "+81399990000",
        "matchable": False,
        "protected": "shared",
    } in [
        {k: i[k] for k in ("kind", "value", "matchable", "protected") if k in i}
        for i in c_doc["identifiers"]
    ]


# -- merges with evidence, and exact splits -----------------------------------------------------


async def _merged_pair(
    recorder: TimelineRecorder, tenant: str
) -> tuple[pb.Interaction, pb.Interaction, pb.Interaction, Recorded]:
    web = form(tenant, at=T0, email="hanako@example.jp", name="Sato Hanako")
    chat = builders.chat(tenant, visitor="v-hanako", name="Hanako", at=T0 + timedelta(days=1))
    link = builders.verified(
        builders.chat(
            tenant, visitor="v-hanako", email="hanako@example.jp", at=T0 + timedelta(days=2)
        )
    )
    recorded = await record(recorder, web, chat, link)
    assert recorded[2].merged_ids, "the linking chat should merge the two customers"
    return web, chat, link, recorded[2]


async def test_merge_ledger_explains_which_identifiers_linked_whom(
    recorder: TimelineRecorder, store: TimelineStore, tenant: str, changes: Changes
) -> None:
    web, _chat, link, _merge = await _merged_pair(recorder, tenant)
    web_customer = await owner(store, tenant, web)
    [entry] = await store.identities.merges_involving(tenant, [web_customer])
    assert entry["status"] == "done"
    assert entry["rule"] == "shared_deterministic_identifier"
    assert entry["actor"]["type"] == "system"
    assert entry["evidence"]["event_id"] == link.event_id
    linked = {(i["kind"], i["value"]): i["customer_id"] for i in entry["evidence"]["identifiers"]}
    assert linked[("email", "hanako@example.jp")] == web_customer
    assert linked[("chat_visitor", "v-hanako")] in entry["merged_ids"]
    assert [c for c, _ in changes] == ["merged"]


async def test_split_puts_customers_identities_and_interactions_back_exactly(
    recorder: TimelineRecorder, store: TimelineStore, tenant: str, changes: Changes
) -> None:
    web, chat, link, merge = await _merged_pair(recorder, tenant)
    survivor = merge.customer_id
    [restored] = merge.merged_ids
    # After the merge: one by the chat visitor only (the chat person's identifier), one by
    # e-mail only (the web person's), both land on the survivor for now.
    later_chat = builders.chat(tenant, visitor="v-hanako", at=T0 + timedelta(days=3))
    later_mail = form(tenant, at=T0 + timedelta(days=4), email="hanako@example.jp")
    await record(recorder, later_chat, later_mail)
    before_split = await customer(store, tenant, survivor)
    assert before_split["interaction_count"] == 5
    [entry] = await store.identities.merges_involving(tenant, [survivor])

    split = builders.split_merge(tenant, entry["_id"])
    [outcome] = await record(recorder, split)
    assert outcome.restored_ids == [restored]

    assert await owner(store, tenant, web) == survivor
    assert await owner(store, tenant, later_mail) == survivor
    assert await owner(store, tenant, chat) == restored
    assert await owner(store, tenant, later_chat) == restored
    # The linking event carried identifiers of both: it stays where the merge put it.
    assert await owner(store, tenant, link) == survivor
    back = await customer(store, tenant, restored)
    kept = await customer(store, tenant, survivor)
    assert back["status"] == "active"
    assert "merged_into" not in back
    assert back["interaction_count"] == 2
    assert back["by_channel"] == {"chat": 2}
    assert kept["interaction_count"] == 4  # web, link, later mail, and the split's own event
    assert restored not in kept["merged_ids"]
    assert back["display_name"] == "Hanako"
    assert kept["display_name"] == "Sato Hanako"
    owners = await store.identities.identity_owners(
        tenant, [("chat_visitor", "v-hanako"), ("email", "hanako@example.jp")]
    )
    assert owners == {
        ("chat_visitor", "v-hanako"): restored,
        ("email", "hanako@example.jp"): survivor,
    }
    # The case the chat opened goes back with it, and is the restored customer's open case.
    chat_case = (await store.interactions.interaction_states(tenant, [chat.event_id]))[
        chat.event_id
    ]["case_id"]
    case = await store.db["cases"].find_one({"_id": chat_case})
    assert case is not None
    assert case["customer_id"] == restored
    assert back["open_case_id"] == chat_case
    ledger = await store.identities.get_merge(tenant, entry["_id"])
    assert ledger is not None
    assert ledger["status"] == "split"
    assert ledger["split"]["actor"] == {"type": "agent", "id": "agent-7", "display_name": "Suzuki"}
    assert [c for c, _ in changes] == ["merged", "split"]

    # Repeating the split (a redelivery, or an agent clicking twice) changes nothing.
    await record(recorder, builders.split_merge(tenant, entry["_id"]))
    assert (await customer(store, tenant, restored))["interaction_count"] == 2
    assert await owner(store, tenant, chat) == restored


async def test_customers_split_apart_are_not_merged_again_automatically(
    recorder: TimelineRecorder, store: TimelineStore, tenant: str
) -> None:
    _web, _chat, _link, merge = await _merged_pair(recorder, tenant)
    [entry] = await store.identities.merges_involving(tenant, [merge.customer_id])
    await record(recorder, builders.split_merge(tenant, entry["_id"]))

    relink = builders.verified(
        builders.chat(
            tenant, visitor="v-hanako", email="hanako@example.jp", at=T0 + timedelta(days=6)
        )
    )
    [outcome] = await record(recorder, relink)
    assert outcome.merged_ids == []
    # It lands on the customer of the strongest identifier: e-mail beats a visitor cookie.
    assert outcome.customer_id == merge.customer_id
    assert (await customer(store, tenant, merge.merged_ids[0]))["status"] == "active"


async def test_an_agent_merges_by_hand_and_the_ledger_names_the_agent(
    recorder: TimelineRecorder, store: TimelineStore, tenant: str, changes: Changes
) -> None:
    one = form(tenant, at=T0, email="taro@example.jp", name="Taro")
    two = builders.call(tenant, from_number="090-3333-4444", at=T0 + timedelta(hours=1))
    two.identifiers.append(ident(pb.IDENTIFIER_KIND_PHONE, "090-3333-4444"))
    first, second = await record(recorder, one, two)
    merge_event = builders.merge_customers(
        tenant, [second.customer_id, first.customer_id], reason="caller confirmed her e-mail"
    )
    [merged] = await record(recorder, merge_event)
    assert merged.customer_id == first.customer_id  # first seen survives
    assert merged.merged_ids == [second.customer_id]
    [entry] = await store.identities.merges_involving(tenant, [first.customer_id])
    assert entry["rule"] == "manual"
    assert entry["actor"]["id"] == "agent-7"
    assert entry["reason"] == "caller confirmed her e-mail"
    survivor = await customer(store, tenant, first.customer_id)
    assert survivor["interaction_count"] == 3  # form, call and the merge note itself
    # Doing it again is a no-op on the already merged customers.
    [again] = await record(
        recorder, builders.merge_customers(tenant, [first.customer_id, second.customer_id])
    )
    assert again.customer_id == first.customer_id
    assert again.merged_ids == []
    assert len(await store.identities.merges_involving(tenant, [first.customer_id])) == 1


async def test_same_name_suggests_a_merge_that_an_agent_can_dismiss_or_accept(
    recorder: TimelineRecorder, store: TimelineStore, tenant: str
) -> None:
    one = form(tenant, at=T0, email="hanako.sato@example.jp", name="佐藤 花子")
    two = form(tenant, at=T0 + timedelta(hours=1), email="h.sato@example.com", name="佐藤花子")
    three = form(tenant, at=T0 + timedelta(hours=2), email="sato3@example.com", name="Guest")
    first, second, third = await record(recorder, one, two, three)
    assert first.customer_id != second.customer_id  # a soft signal never merges by itself
    [suggestion] = await store.identities.open_suggestions(tenant, [first.customer_id], 10)
    assert suggestion["customer_ids"] == sorted([first.customer_id, second.customer_id])
    assert suggestion["signals"] == ["same_name"]
    assert third.customer_id not in suggestion["customer_ids"]
    guest = form(tenant, at=T0 + timedelta(hours=3), email="g2@example.com", name="guest")
    [other_guest] = await record(recorder, guest)
    assert await store.identities.open_suggestions(tenant, [other_guest.customer_id], 10) == []

    await record(recorder, builders.dismiss_suggestion(tenant, suggestion["_id"]))
    assert await store.identities.open_suggestions(tenant, [first.customer_id], 10) == []

    four = form(tenant, at=T0 + timedelta(hours=3), email="k@example.jp", name="Kato Ken")
    five = form(tenant, at=T0 + timedelta(hours=4), email="ken@example.jp", name="kato  KEN")
    fourth, fifth = await record(recorder, four, five)
    [accept] = await store.identities.open_suggestions(tenant, [fifth.customer_id], 10)
    [merged] = await record(
        recorder,
        builders.merge_customers(
            tenant, [fourth.customer_id, fifth.customer_id], suggestion_id=accept["_id"]
        ),
    )
    assert merged.merged_ids == [fifth.customer_id]
    settled = await store.db["merge_suggestions"].find_one({"_id": accept["_id"]})
    assert settled is not None
    assert settled["status"] == "accepted"
    assert await store.identities.open_suggestions(tenant, [fourth.customer_id], 10) == []


async def test_a_web_form_name_field_names_the_customer_like_an_actor_name(
    recorder: TimelineRecorder, store: TimelineStore, tenant: str
) -> None:
    email = "yamada@example.jp"
    named = form(tenant, at=T0, email=email, お名前=" 山田 花子 ")
    [first] = await record(recorder, named)
    assert (await customer(store, tenant, first.customer_id))["display_name"] == "山田 花子"
    # Same rules as an actor's name: a newer form renames, an older one does not.
    newer = form(tenant, at=T0 + timedelta(hours=1), email=email, 氏名="Yamada Hanako")
    older = form(tenant, at=T0 - timedelta(hours=1), email=email, 氏名="Old Name")
    await record(recorder, newer, older)
    profile = await customer(store, tenant, first.customer_id)
    assert profile["display_name"] == "Yamada Hanako"
    # The name is a soft signal too: another customer giving it is suggested for a merge.
    other = form(tenant, at=T0 + timedelta(hours=2), email="h.y@example.com", name="yamada hanako")
    [second] = await record(recorder, other)
    [suggestion] = await store.identities.open_suggestions(tenant, [second.customer_id], 10)
    assert suggestion["customer_ids"] == sorted([first.customer_id, second.customer_id])


async def test_identity_actions_that_cannot_apply_are_permanent_errors_and_spare_the_batch(
    recorder: TimelineRecorder, store: TimelineStore, tenant: str
) -> None:
    good = form(tenant, at=T0, email="good@example.jp")
    other_tenant = form(f"{tenant}-x", at=T0, email="x@example.jp")
    [foreign] = await record(recorder, other_tenant)
    bad = [
        builders.split_merge(tenant, "mrg_does_not_exist"),
        builders.merge_customers(tenant, ["cus_only_one"]),
        builders.merge_customers(tenant, ["cus_unknown_1", "cus_unknown_2"]),
        # A customer of another tenant is unknown here: nothing crosses tenants.
        builders.merge_customers(tenant, [foreign.customer_id, "cus_unknown_3"]),
        builders.dismiss_suggestion(tenant, "sug_nope"),
    ]
    outcomes = await recorder.record_batch([*bad, good])
    assert all(isinstance(o, PermanentError) for o in outcomes[:-1]), outcomes
    assert isinstance(outcomes[-1], Recorded)
    assert await store.interactions.lookup_events(tenant, [good.event_id])
