"""Identity takeover through unverified identifiers, against the real timeline and ingestion.

The attack (issue 9, finding 4): an anonymous web form with Alice's address and the
attacker's phone, then an anonymous chat with the attacker's cookie and Alice's address,
made the attacker's phone and cookie screen-pop Alice's profile and renamed her "Mallory".
Alice's own contact is a reply in a mail thread, which the e-mail channel verifies.

The timeline and the web and chat ingestors run as `python -m services.<name>` processes
configured by TSUNAGU_* variables (the real start path), with a NATS server of their own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import nats
import pytest
from pymongo import AsyncMongoClient

from tests import builders
from tests.action_keys import session_action_keys
from tests.conftest import _quiet_sink
from tests.grpc_credentials import caller_set, channel_for
from tests.integration.test_tenant_settings import Running, _address, _service
from tsunagu.bus.provision import ProvisionSettings, provision
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc, timeline_pb2, timeline_pb2_grpc
from tsunagu.v1 import interaction_pb2 as pb

_RUN = uuid.uuid4().hex[:8]
PLAIN = f"plain{_RUN}"
# A tenant that lets e-mail addresses and phone numbers link customers unverified.
TRUSTING = f"trusting{_RUN}"

ALICE = "alice.sato@example.jp"
CALLERS = caller_set([PLAIN, TRUSTING])
ATTACKER_PHONE = "+81 90 6666 0001"
ATTACKER_COOKIE = "cookie-mallory"

T0 = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class Desk(Running):
    """The running processes, with web and chat ingestion to submit to."""

    web: ingest_pb2_grpc.IngestServiceAsyncStub | None = None
    chat: ingest_pb2_grpc.IngestServiceAsyncStub | None = None

    async def submit(
        self, stub: ingest_pb2_grpc.IngestServiceAsyncStub | None, event: pb.Interaction
    ) -> str:
        """Submit through an ingestor; returns the customer the timeline put the event on."""
        assert stub is not None
        response = await stub.Submit(ingest_pb2.SubmitRequest(interaction=event))
        assert response.result.status == ingest_pb2.SubmitResult.STATUS_ACCEPTED, response
        return (await self.stored((event,)))[event.event_id]

    async def profile(self, tenant: str, customer_id: str) -> timeline_pb2.Customer:
        found = await self.timeline.GetCustomers(
            timeline_pb2.GetCustomersRequest(tenant=tenant, customer_ids=[customer_id])
        )
        [customer] = found.customers
        return customer

    async def suggestions(self, tenant: str, customer_id: str) -> list[tuple[set[str], list[str]]]:
        found = await self.timeline.ListMergeSuggestions(
            timeline_pb2.ListMergeSuggestionsRequest(tenant=tenant, customer_id=customer_id)
        )
        return [(set(s.customer_ids), list(s.signals)) for s in found.suggestions]


@pytest.fixture(scope="module")
async def desk(tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str) -> AsyncIterator[Desk]:
    database = f"takeover_{_RUN}"
    async with NatsServer(tmp_path_factory.mktemp("takeover-nats"), sink=_quiet_sink) as server:
        await provision(ProvisionSettings(nats_url=server.url))
        timeline_env = {
            "TSUNAGU_TIMELINE_TENANT_IDENTITY": json.dumps(
                {TRUSTING: {"merge_unverified": ["email", "phone"]}}
            ),
            "TSUNAGU_TIMELINE_PORT": "0",
            "TSUNAGU_TIMELINE_NATS_URL": server.url,
            "TSUNAGU_TIMELINE_MONGODB_URI": mongodb_uri,
            "TSUNAGU_TIMELINE_MONGODB_DATABASE": database,
            "TSUNAGU_TIMELINE_CALLERS": CALLERS.json(),
            **session_action_keys().timeline_env(),
        }

        def ingest_env(channel: str) -> dict[str, str]:
            return {
                "TSUNAGU_INGEST_CHANNEL": channel,
                "TSUNAGU_INGEST_PORT": "0",
                "TSUNAGU_INGEST_NATS_URL": server.url,
                "TSUNAGU_INGEST_CALLERS": CALLERS.json(),
            }

        async with (
            _service("services.timeline", "timeline", timeline_env) as timeline,
            _service("services.ingest", "ingest-web", ingest_env("web")) as web,
            _service("services.ingest", "ingest-chat", ingest_env("chat")) as chat,
        ):
            nc = await nats.connect(server.url)
            channels = [
                channel_for(_address(timeline), CALLERS.service),
                channel_for(_address(web), CALLERS.adapter("web")),
                channel_for(_address(chat), CALLERS.adapter("chat")),
            ]
            try:
                yield Desk(
                    js=nc.jetstream(),
                    timeline=timeline_pb2_grpc.TimelineServiceStub(channels[0]),
                    sms=ingest_pb2_grpc.IngestServiceStub(channels[1]),  # unused here
                    web=ingest_pb2_grpc.IngestServiceStub(channels[1]),
                    chat=ingest_pb2_grpc.IngestServiceStub(channels[2]),
                )
            finally:
                for opened in channels:
                    await opened.close(grace=None)
                await nc.close()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_uri)
    await client.drop_database(database)
    await client.close()


def identifier(kind: pb.IdentifierKind.ValueType, value: str) -> pb.Identifier:
    return pb.Identifier(kind=kind, value=value)


def replies_in_thread(
    tenant: str, address: str = ALICE, name: str = "Alice Sato"
) -> pb.Interaction:
    """A customer answers our mail in its thread: e-mail ingestion verifies the address so."""
    mail = builders.email(
        tenant,
        from_address=address,
        extra_identifiers=[identifier(pb.IDENTIFIER_KIND_EMAIL, address)],
        at=at(0),
    )
    mail.email.in_reply_to = "<answer-1@shop.example.jp>"
    mail.actor.display_name = name
    return builders.verified(mail)


def web_form(tenant: str, *, name: str, minutes: float, **fields: str) -> pb.Interaction:
    """An anonymous web form; it even claims its identifiers are verified (they are not)."""
    form = builders.chat(tenant, at=at(minutes))
    del form.identifiers[:]
    form.channel, form.kind = pb.CHANNEL_WEB, pb.KIND_FORM_SUBMISSION
    form.web_form.form_id = "contact"
    form.web_form.fields.add(name="name", value=name)
    for key, value in fields.items():
        form.web_form.fields.add(name=key, value=value)
    form.web_form.fields.add(name="message", value="Please change my delivery address.")
    form.identifiers.append(
        pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=fields["email"], verified=True)
    )
    return form


async def test_an_anonymous_form_and_chat_with_alices_address_do_not_take_her_over(
    desk: Desk,
) -> None:
    mail = replies_in_thread(PLAIN)
    alice = (await desk.record(mail))[mail.event_id]

    form = web_form(PLAIN, name="Mallory", minutes=10, email=ALICE, phone=ATTACKER_PHONE)
    form_customer = await desk.submit(desk.web, form)
    chat = builders.chat(PLAIN, visitor=ATTACKER_COOKIE, email=ALICE, name="Mallory", at=at(20))
    chat_customer = await desk.submit(desk.chat, chat)
    # Alice's address alone, under another name: it lands on her, but renames nobody.
    again = web_form(PLAIN, name="Mallory", minutes=30, email=ALICE)
    assert await desk.submit(desk.web, again) == alice

    assert alice not in {form_customer, chat_customer}
    phone = identifier(pb.IDENTIFIER_KIND_PHONE, ATTACKER_PHONE)
    cookie = identifier(pb.IDENTIFIER_KIND_CHAT_VISITOR, ATTACKER_COOKIE)
    assert await desk.owner_of(PLAIN, phone) == form_customer
    assert await desk.owner_of(PLAIN, cookie) == chat_customer
    profile = await desk.profile(PLAIN, alice)
    assert profile.display_name == "Alice Sato"
    assert list(profile.merged_ids) == []
    assert profile.interaction_count == 2  # her reply and the address-only form
    own = {(i.kind, i.value) for i in profile.identifiers}
    assert (pb.IDENTIFIER_KIND_PHONE, "+819066660001") not in own
    assert (pb.IDENTIFIER_KIND_CHAT_VISITOR, ATTACKER_COOKIE) not in own
    # An agent decides instead: each link is a suggestion naming Alice.
    suggested = await desk.suggestions(PLAIN, alice)
    assert ({alice, form_customer}, ["unverified_identifier"]) in suggested
    assert ({alice, chat_customer}, ["unverified_identifier"]) in suggested


async def test_the_same_links_verified_by_a_signed_in_chat_still_merge(desk: Desk) -> None:
    bob = "bob.ito@example.jp"
    mail = replies_in_thread(PLAIN, bob, "Ito Bob")
    by_mail = (await desk.record(mail))[mail.event_id]
    call = builders.call(PLAIN, from_number="090-6666-0002", at=at(5))
    # What voice ingestion adds: the caller id, which the telephony network vouches for.
    call.identifiers.append(identifier(pb.IDENTIFIER_KIND_PHONE, "090-6666-0002"))
    call = builders.verified(call)
    by_phone = (await desk.record(call))[call.event_id]
    assert by_mail != by_phone

    signed_in = builders.verified(
        builders.chat(PLAIN, visitor="cookie-bob", email=bob, phone="090-6666-0002", at=at(30))
    )
    survivor = await desk.submit(desk.chat, signed_in)

    profile = await desk.profile(PLAIN, survivor)
    assert {by_mail, by_phone} == {survivor, *profile.merged_ids}
    assert profile.display_name == "Ito Bob"  # the verified reply named the profile
    assert all(i.verified for i in profile.identifiers)
    for ident in (
        identifier(pb.IDENTIFIER_KIND_PHONE, "090-6666-0002"),
        identifier(pb.IDENTIFIER_KIND_CHAT_VISITOR, "cookie-bob"),
        identifier(pb.IDENTIFIER_KIND_EMAIL, bob),
    ):
        assert await desk.owner_of(PLAIN, ident) == survivor


async def test_a_tenant_that_trusts_unverified_addresses_merges_on_them(desk: Desk) -> None:
    merged = {}
    for tenant in (TRUSTING, PLAIN):
        by_form = web_form(tenant, name="Kato Yui", minutes=0, email="yui@example.jp")
        by_phone = builders.chat(tenant, visitor="cookie-yui", phone="090-6666-0003", at=at(5))
        first = await desk.submit(desk.web, by_form)
        second = await desk.submit(desk.chat, by_phone)
        link = web_form(
            tenant, name="Kato Yui", minutes=10, email="yui@example.jp", phone="090-6666-0003"
        )
        await desk.submit(desk.web, link)
        owners = await desk.stored((by_form, by_phone))
        merged[tenant] = owners[by_form.event_id] == owners[by_phone.event_id]
        assert first != second
    assert merged == {TRUSTING: True, PLAIN: False}
