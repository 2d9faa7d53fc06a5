"""The timeline's gRPC API (`tsunagu.v1.TimelineService`) with bad, hostile and foreign input.

Everything goes through a real `grpc.aio` channel to a running timeline whose data was
written by real ingestion services; after every refused call, a good call on the same
channel must still be answered.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from tests import builders
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.test_ingest_to_timeline import wait_for_events
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc, timeline_pb2, timeline_pb2_grpc
from tsunagu.v1 import interaction_pb2 as pb

Starter = Callable[..., AbstractAsyncContextManager[Any]]
Code = grpc.StatusCode

PHONE = "090-4444-1111"


@dataclass
class Api:
    tenant: str
    timeline: timeline_pb2_grpc.TimelineServiceAsyncStub
    chat: ingest_pb2_grpc.IngestServiceAsyncStub
    voice: ingest_pb2_grpc.IngestServiceAsyncStub

    async def seed(self, *interactions: pb.Interaction) -> dict[str, str]:
        """Submit through ingestion, wait until recorded; returns event id → customer id."""
        for stub, channel in ((self.chat, pb.CHANNEL_CHAT), (self.voice, pb.CHANNEL_VOICE)):
            items = [i for i in interactions if i.channel == channel]
            if items:
                response = await stub.SubmitBatch(ingest_pb2.SubmitBatchRequest(interactions=items))
                statuses = {r.status for r in response.results}
                assert statuses == {ingest_pb2.SubmitResult.STATUS_ACCEPTED}, response
        return await wait_for_events(self.timeline, self.tenant, [i.event_id for i in interactions])

    async def refused(
        self, call: Awaitable[object], code: grpc.StatusCode, mentioning: str = ""
    ) -> None:
        """The call fails with `code` (and a message naming `mentioning`); the server goes on."""
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == code, caught.value.details()
        assert mentioning in (caught.value.details() or "")
        await self.still_serving()

    async def still_serving(self) -> None:
        answer = await self.timeline.LookupEvents(
            timeline_pb2.LookupEventsRequest(tenant=self.tenant, event_ids=["probe"])
        )
        assert list(answer.found) == []


@pytest.fixture
async def api(
    run_timeline: Starter, run_ingest: Starter, tenant: str, callers: CallerSet
) -> AsyncIterator[Api]:
    async with run_timeline() as timeline, run_ingest("chat") as chat, run_ingest("voice") as voice:
        channels = [
            channel_for(timeline.server.address, callers.service),
            channel_for(chat.server.address, callers.adapter("chat")),
            channel_for(voice.server.address, callers.adapter("voice")),
        ]
        try:
            yield Api(
                tenant=tenant,
                timeline=timeline_pb2_grpc.TimelineServiceStub(channels[0]),
                chat=ingest_pb2_grpc.IngestServiceStub(channels[1]),
                voice=ingest_pb2_grpc.IngestServiceStub(channels[2]),
            )
        finally:
            for channel in channels:
                await channel.close(grace=None)


def phone(value: str) -> pb.Identifier:
    return pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=value)


def email(value: str) -> pb.Identifier:
    return pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=value)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def event_ids(page: timeline_pb2.ListInteractionsResponse) -> list[str]:
    return [e.interaction.event_id for e in page.entries]


async def seven_contacts(api: Api) -> tuple[str, list[pb.Interaction]]:
    """One customer: chats at t0..t6 except calls at t1 and t4, five minutes apart."""
    t0 = datetime.now(UTC) - timedelta(hours=1)
    history = [
        builders.call(
            api.tenant, from_number=PHONE, call_id=f"call-{i}", at=t0 + timedelta(minutes=5 * i)
        )
        if i in (1, 4)
        else builders.chat(api.tenant, phone=PHONE, at=t0 + timedelta(minutes=5 * i))
        for i in range(7)
    ]
    owners = await api.seed(*history)
    [customer_id] = set(owners.values())
    return customer_id, history


async def test_malformed_tenant_is_refused_by_every_method(api: Api) -> None:
    bad_tenants = ["", "Acme", "a.b", ">", "a" * 100, "acme\n", "*", "acme corp"]
    for bad in bad_tenants:
        calls: list[Awaitable[object]] = [
            api.timeline.ResolveIdentifier(
                timeline_pb2.ResolveIdentifierRequest(tenant=bad, identifier=phone(PHONE))
            ),
            api.timeline.GetCustomers(
                timeline_pb2.GetCustomersRequest(tenant=bad, customer_ids=["cus_1"])
            ),
            api.timeline.ListInteractions(
                timeline_pb2.ListInteractionsRequest(tenant=bad, customer_id="cus_1")
            ),
            api.timeline.LookupEvents(
                timeline_pb2.LookupEventsRequest(tenant=bad, event_ids=["e"])
            ),
            api.timeline.GetInteractions(
                timeline_pb2.GetInteractionsRequest(tenant=bad, event_ids=["e"])
            ),
        ]
        for call in calls:
            await api.refused(call, Code.INVALID_ARGUMENT, "tenant")


async def test_forged_cursor_is_refused_naming_after(api: Api) -> None:
    customer_id, _ = await seven_contacts(api)

    def listing(after: str) -> Awaitable[timeline_pb2.ListInteractionsResponse]:
        return api.timeline.ListInteractions(
            timeline_pb2.ListInteractionsRequest(
                tenant=api.tenant, customer_id=customer_id, page_size=2, after=after
            )
        )

    forged = [
        "not a cursor!!",
        "%%%%",
        b64(b"\xff\xfe\x00garbage"),
        b64(b'["2024-01-01T00:00:00", "naive-time"]'),
        b64(b'["2024-01-01T00:00:00+00:00", 42]'),
        b64(b'["yesterday", "e-1"]'),
        b64(b"[1, 2]"),
        b64(b'["2024-01-01T00:00:00+00:00", "e-1", "extra"]'),
        b64(b'{"at": "2024-01-01T00:00:00+00:00"}'),
        b64(b'"a plain string"'),
        b64(b"null"),
        "A" * 100_000,
    ]
    for after in forged:
        await api.refused(listing(after), Code.INVALID_ARGUMENT, "after")

    # The cursor the service issued still works after all of that.
    first = await listing("")
    second = await listing(first.next_cursor)
    assert len(second.entries) == 2
    assert not set(event_ids(first)) & set(event_ids(second))


async def test_deeply_nested_cursor_is_refused_naming_after(api: Api) -> None:
    chat = builders.chat(api.tenant)
    customer_id = (await api.seed(chat))[chat.event_id]
    nested = b64(b"[" * 100_000)
    await api.refused(
        api.timeline.ListInteractions(
            timeline_pb2.ListInteractionsRequest(
                tenant=api.tenant, customer_id=customer_id, after=nested
            )
        ),
        Code.INVALID_ARGUMENT,
        "after",
    )


async def test_page_size_outside_1_to_200_is_refused(api: Api) -> None:
    customer_id, history = await seven_contacts(api)

    def listing(size: int) -> Awaitable[timeline_pb2.ListInteractionsResponse]:
        return api.timeline.ListInteractions(
            timeline_pb2.ListInteractionsRequest(
                tenant=api.tenant, customer_id=customer_id, page_size=size
            )
        )

    for size in (-1, 201, -(2**31), 2**31 - 1):
        await api.refused(listing(size), Code.INVALID_ARGUMENT, "page_size")
    # The bounds themselves, and 0 (the default), are accepted.
    for size in (1, 200, 0):
        page = await listing(size)
        assert len(page.entries) == min(size or 50, len(history))


async def test_listing_an_unknown_customer_is_not_found(api: Api) -> None:
    for customer_id in ("cus_00000000000000000000000000000000", "", "x" * 10_000, "../../etc"):
        await api.refused(
            api.timeline.ListInteractions(
                timeline_pb2.ListInteractionsRequest(tenant=api.tenant, customer_id=customer_id)
            ),
            Code.NOT_FOUND,
        )


async def test_get_customers_refuses_over_500_ids_and_keeps_positions_of_unknown_ones(
    api: Api,
) -> None:
    chat = builders.chat(api.tenant, phone=PHONE, name="Tanaka Yui")
    customer_id = (await api.seed(chat))[chat.event_id]

    too_many = [f"cus_{i}" for i in range(501)]
    await api.refused(
        api.timeline.GetCustomers(
            timeline_pb2.GetCustomersRequest(tenant=api.tenant, customer_ids=too_many)
        ),
        Code.INVALID_ARGUMENT,
        "customer_ids",
    )
    await api.refused(
        api.timeline.LookupEvents(
            timeline_pb2.LookupEventsRequest(tenant=api.tenant, event_ids=too_many)
        ),
        Code.INVALID_ARGUMENT,
        "event_ids",
    )

    asked = ["cus_unknown", customer_id, "", "cus_unknown", customer_id, "'; drop --"]
    answer = await api.timeline.GetCustomers(
        timeline_pb2.GetCustomersRequest(tenant=api.tenant, customer_ids=asked)
    )
    assert [c.id for c in answer.customers] == ["", customer_id, "", "", customer_id, ""]
    assert answer.customers[0] == timeline_pb2.Customer()
    assert answer.customers[1].display_name == "Tanaka Yui"
    # Exactly 500 is still one call.
    full = await api.timeline.GetCustomers(
        timeline_pb2.GetCustomersRequest(tenant=api.tenant, customer_ids=[customer_id] * 500)
    )
    assert len(full.customers) == 500


async def test_resolve_identifier_refuses_unparsable_identifiers_and_misses_unknown_ones(
    api: Api,
) -> None:
    chat = builders.chat(api.tenant, phone=PHONE)
    customer_id = (await api.seed(chat))[chat.event_id]

    def resolving(identifier: pb.Identifier) -> Awaitable[timeline_pb2.ResolveIdentifierResponse]:
        return api.timeline.ResolveIdentifier(
            timeline_pb2.ResolveIdentifierRequest(tenant=api.tenant, identifier=identifier)
        )

    unparsable = [
        email("not-an-email"),
        email("two@@example.jp"),
        email("hanako@example.jp\x00"),
        email("x" * 300 + "@example.jp"),
        phone("call-me-maybe"),
        phone("ＡＢＣ"),
        phone("0" * 65),
        phone("090\x004444-1111"),
        phone("090\x1b[2J4444-1111"),
        pb.Identifier(value=PHONE),  # kind unspecified
        pb.Identifier(kind=99, value=PHONE),  # type: ignore[arg-type]
    ]
    for identifier in unparsable:
        await api.refused(resolving(identifier), Code.INVALID_ARGUMENT, "identifier")

    for unknown in (phone("090-9876-5432"), email("nobody@example.jp"), phone("12345")):
        await api.refused(resolving(unknown), Code.NOT_FOUND)

    found = await resolving(phone("+81 90-4444-1111"))
    assert found.customer.id == customer_id


async def test_customer_of_one_tenant_is_invisible_to_another_tenant(api: Api) -> None:
    chat = builders.chat(api.tenant, phone=PHONE, name="Sato Hanako")
    customer_id = (await api.seed(chat))[chat.event_id]
    other = f"{api.tenant}-b"

    for tenant, visible in ((api.tenant, True), (other, False)):
        resolve = api.timeline.ResolveIdentifier(
            timeline_pb2.ResolveIdentifierRequest(tenant=tenant, identifier=phone(PHONE))
        )
        listing = api.timeline.ListInteractions(
            timeline_pb2.ListInteractionsRequest(tenant=tenant, customer_id=customer_id)
        )
        if visible:
            assert (await resolve).customer.id == customer_id
            assert event_ids(await listing) == [chat.event_id]
        else:
            await api.refused(resolve, Code.NOT_FOUND)
            await api.refused(listing, Code.NOT_FOUND)
        customers = await api.timeline.GetCustomers(
            timeline_pb2.GetCustomersRequest(tenant=tenant, customer_ids=[customer_id])
        )
        assert [c.id for c in customers.customers] == [customer_id if visible else ""]
        assert [c.display_name for c in customers.customers] == ["Sato Hanako" if visible else ""]
        found = await api.timeline.LookupEvents(
            timeline_pb2.LookupEventsRequest(tenant=tenant, event_ids=[chat.event_id])
        )
        assert [f.customer_id for f in found.found] == ([customer_id] if visible else [])
        got = await api.timeline.GetInteractions(
            timeline_pb2.GetInteractionsRequest(
                tenant=tenant, event_ids=["unknown", chat.event_id, chat.event_id]
            )
        )
        assert [(e.interaction.event_id, e.customer_id) for e in got.entries] == (
            [(chat.event_id, customer_id)] if visible else []
        )
        if visible:
            assert got.entries[0].interaction.content.text == chat.content.text
            assert got.entries[0].case_id


async def test_get_interactions_refuses_over_500_ids(api: Api) -> None:
    await api.refused(
        api.timeline.GetInteractions(
            timeline_pb2.GetInteractionsRequest(
                tenant=api.tenant, event_ids=[f"e{i}" for i in range(501)]
            )
        ),
        Code.INVALID_ARGUMENT,
        "event_ids",
    )


async def test_pages_of_three_walk_the_timeline_newest_first(api: Api) -> None:
    customer_id, history = await seven_contacts(api)
    newest_first = [i.event_id for i in reversed(history)]

    pages: list[timeline_pb2.ListInteractionsResponse] = []
    after = ""
    for _ in range(3):
        page = await api.timeline.ListInteractions(
            timeline_pb2.ListInteractionsRequest(
                tenant=api.tenant, customer_id=customer_id, page_size=3, after=after
            )
        )
        pages.append(page)
        after = page.next_cursor

    assert [event_ids(p) for p in pages] == [newest_first[:3], newest_first[3:6], newest_first[6:]]
    assert [p.has_more for p in pages] == [True, True, False]
    assert all(e.customer_id == customer_id for p in pages for e in p.entries)
    past_the_end = await api.timeline.ListInteractions(
        timeline_pb2.ListInteractionsRequest(
            tenant=api.tenant, customer_id=customer_id, page_size=3, after=after
        )
    )
    assert list(past_the_end.entries) == []
    assert not past_the_end.has_more


async def test_channel_kind_and_time_filters_select_matching_interactions(api: Api) -> None:
    customer_id, history = await seven_contacts(api)
    ids = [i.event_id for i in history]

    async def listing(**filters: Any) -> list[str]:
        request = timeline_pb2.ListInteractionsRequest(
            tenant=api.tenant, customer_id=customer_id, **filters
        )
        return event_ids(await api.timeline.ListInteractions(request))

    since, until = history[2].occurred_at, history[5].occurred_at  # [t2, t5)
    assert await listing(channels=[pb.CHANNEL_VOICE]) == [ids[4], ids[1]]
    assert await listing(channels=[pb.CHANNEL_EMAIL]) == []
    assert await listing(kinds=[pb.KIND_CALL_STARTED]) == [ids[4], ids[1]]
    assert await listing(since=since, until=until) == [ids[4], ids[3], ids[2]]
    assert await listing(since=since) == [ids[6], ids[5], ids[4], ids[3], ids[2]]
    assert await listing(until=until) == [ids[4], ids[3], ids[2], ids[1], ids[0]]
    assert await listing(channels=[pb.CHANNEL_CHAT], since=since, until=until) == [
        ids[3],
        ids[2],
    ]
    assert await listing(since=until, until=since) == []

    # Filters and pages together: the chats (t0, t2, t3, t5, t6) two at a time.
    chats: list[list[str]] = []
    after = ""
    while True:
        page = await api.timeline.ListInteractions(
            timeline_pb2.ListInteractionsRequest(
                tenant=api.tenant,
                customer_id=customer_id,
                channels=[pb.CHANNEL_CHAT],
                page_size=2,
                after=after,
            )
        )
        chats.append(event_ids(page))
        if not page.has_more:
            break
        after = page.next_cursor
    assert chats == [[ids[6], ids[5]], [ids[3], ids[2]], [ids[0]]]


async def test_out_of_range_since_is_refused_naming_the_field(api: Api) -> None:
    chat = builders.chat(api.tenant)
    customer_id = (await api.seed(chat))[chat.event_id]
    request = timeline_pb2.ListInteractionsRequest(tenant=api.tenant, customer_id=customer_id)
    request.since.seconds = 2**62
    await api.refused(api.timeline.ListInteractions(request), Code.INVALID_ARGUMENT, "since")
