"""Cases across channels, through the real recorder, the real store and the gRPC API.

The recorder and the API share an injected clock, so follow-ups fall due when the test says.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from nats.aio.msg import Msg

from services.timeline.bootstrap import build_core
from services.timeline.cases import CasePolicy, case_id_for, task_id_for
from services.timeline.cases.model import CaseDoc
from services.timeline.errors import PermanentError
from services.timeline.identity.policy import IdentityPolicy
from services.timeline.recorder import Recorded, TimelineRecorder
from services.timeline.stores import TimelineStore
from tests import builders
from tests.grpc_credentials import CallerSet
from tests.integration.test_consumer_faults import ERROR_HEADER, Starter, header, open_bus
from tests.integration.timeline_api import serving_timeline
from tests.integration.timeline_db import timeline_db
from tsunagu.bus.notices import decode_notice
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1 import notices_pb2, timeline_pb2, timeline_pb2_grpc

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
Code = grpc.StatusCode


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: T0)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Desk:
    """A recorder and the gRPC API over one real store, for one tenant."""

    tenant: str
    recorder: TimelineRecorder
    api: timeline_pb2_grpc.TimelineServiceAsyncStub
    clock: Clock
    store: TimelineStore

    async def record(self, *interactions: pb.Interaction) -> list[Recorded]:
        outcomes = await self.recorder.record_batch(list(interactions))
        assert all(isinstance(o, Recorded) for o in outcomes), outcomes
        return [o for o in outcomes if isinstance(o, Recorded)]

    async def case(self, case_id: str) -> timeline_pb2.Case:
        [case] = (
            await self.api.GetCases(
                timeline_pb2.GetCasesRequest(tenant=self.tenant, case_ids=[case_id])
            )
        ).cases
        assert case.id == case_id
        return case

    async def customer(self, customer_id: str) -> timeline_pb2.Customer:
        [customer] = (
            await self.api.GetCustomers(
                timeline_pb2.GetCustomersRequest(tenant=self.tenant, customer_ids=[customer_id])
            )
        ).customers
        return customer

    async def list_cases(self, **filter_: object) -> list[str]:
        page = await self.api.ListCases(
            timeline_pb2.ListCasesRequest(
                tenant=self.tenant,
                filter=timeline_pb2.CaseFilter(**filter_),  # type: ignore[arg-type]
                page_size=200,
            )
        )
        return [c.id for c in page.cases]

    async def search(self, query: str, limit: int = 0) -> list[str]:
        found = await self.api.SearchCustomers(
            timeline_pb2.SearchCustomersRequest(tenant=self.tenant, query=query, limit=limit)
        )
        return [c.id for c in found.customers]

    async def refused(self, call: Awaitable[object], mentioning: str) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == Code.INVALID_ARGUMENT, caught.value.details()
        assert mentioning in (caught.value.details() or "")


POLICY = CasePolicy(
    attach_window=timedelta(days=7),
    reopen_window=timedelta(hours=72),
    follow_up_due=timedelta(hours=24),
)


@pytest.fixture
async def desk(
    mongodb_uri: str, database_name: str, tenant: str, callers: CallerSet
) -> AsyncIterator[Desk]:
    async with timeline_db(mongodb_uri, database_name) as store:
        clock = Clock()
        core = build_core(
            store,
            identity_for=lambda _t: IdentityPolicy("JP"),
            clock=clock,
            case_policy_for=lambda _t: POLICY,
        )
        async with serving_timeline(store, core, callers, clock=clock) as stub:
            yield Desk(tenant, core.recorder, stub, clock, store)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def caller(tenant: str, number: str, minutes: float) -> pb.Interaction:
    call = builders.call(tenant, from_number=number, call_id=f"call-{minutes}", at=at(minutes))
    call.identifiers.append(pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=number))
    return call


PHONE = "090-1234-5678"


async def test_a_case_follows_the_customer_from_chat_to_phone_to_resolution_and_back(
    desk: Desk,
) -> None:
    t = desk.tenant
    chat = builders.chat(t, visitor="v1", phone=PHONE, name="Tanaka Yui", at=at(0))
    [opened] = await desk.record(chat)
    case_id, customer_id = opened.case_id, opened.customer_id
    assert case_id == case_id_for(t, chat.event_id)
    assert opened.case_status == "open"
    assert (await desk.customer(customer_id)).open_case_id == case_id

    # The customer calls: same case, and the timeline records the switch from chat.
    call = caller(t, PHONE, 20)
    [on_phone] = await desk.record(call)
    assert on_phone.case_id == case_id
    page = await desk.api.ListInteractions(
        timeline_pb2.ListInteractionsRequest(tenant=t, customer_id=customer_id, case_id=case_id)
    )
    assert [(e.interaction.event_id, e.case_id, e.switched_from) for e in page.entries] == [
        (call.event_id, case_id, pb.CHANNEL_CHAT),
        (chat.event_id, case_id, pb.CHANNEL_UNSPECIFIED),
    ]

    # The chat agent answered before handing off to the phone queue.
    reply = builders.agent_reply(t, visitor="v1", text="Let me check", agent="chat-7", at=at(5))
    handoff = builders.agent_action(
        t,
        customer_id,
        agent="chat-7",
        agent_name="Sato",
        at=at(21),
        handoff=pb.HandoffAction(
            to_channel=pb.CHANNEL_VOICE,
            to_queue="phone-support",
            to_agent="phone-3",
            summary="Parcel lost; wants a refund",
            open_questions=["Refund or resend?"],
        ),
    )
    await desk.record(reply, handoff)
    case = await desk.case(case_id)
    assert case.first_response_time.ToTimedelta() == timedelta(minutes=5)
    assert (case.owner_agent_id, case.queue) == ("phone-3", "phone-support")
    assert case.last_handoff.open_questions == ["Refund or resend?"]
    remark = (await desk.customer(customer_id)).last_agent_remark
    assert (remark.text, remark.agent.id, remark.case_id) == (
        "Parcel lost; wants a refund",
        "chat-7",
        case_id,
    )
    assert list(remark.open_questions) == ["Refund or resend?"]
    assert remark.kind == pb.KIND_HANDOFF

    # Escalated, then transferred: the transferring agent owes the customer a follow-up.
    escalate = builders.agent_action(
        t, customer_id, agent="phone-3", at=at(30), escalation=pb.EscalationAction(level=2)
    )
    transfer = builders.agent_action(
        t,
        customer_id,
        case_id=case_id,
        agent="phone-3",
        at=at(35),
        transfer=pb.TransferAction(to_department="logistics", reason="trace the parcel"),
    )
    await desk.record(escalate, transfer)
    case = await desk.case(case_id)
    assert case.status == timeline_pb2.CASE_STATUS_ESCALATED
    assert case.escalation_level == 2
    assert case.department == "logistics"
    [task] = case.follow_ups
    assert task.id == task_id_for(t, transfer.event_id)
    assert (task.agent_id, task.reason, task.done) == ("phone-3", "trace the parcel", False)
    assert task.due_at.ToDatetime(tzinfo=UTC) == at(35) + timedelta(hours=24)
    assert await desk.list_cases(escalated_only=True) == [case_id]
    assert await desk.list_cases(overdue_follow_ups_only=True) == []
    desk.clock.now = at(35) + timedelta(hours=25)
    assert await desk.list_cases(overdue_follow_ups_only=True) == [case_id]

    # The customer hears back: the follow-up is done.
    update = builders.agent_action(
        t,
        customer_id,
        agent="logistics-1",
        at=at(36 * 60),
        progress_update=pb.ProgressUpdateAction(message="Found it; it ships tomorrow"),
    )
    await desk.record(update)
    [task] = (await desk.case(case_id)).follow_ups
    assert task.done
    assert task.done_by_event_id == update.event_id
    assert await desk.list_cases(overdue_follow_ups_only=True) == []

    resolve = builders.agent_action(
        t, customer_id, at=at(40 * 60), resolution=pb.ResolutionAction(summary="Resent")
    )
    [resolved] = await desk.record(resolve)
    assert resolved.case_status == "resolved"
    case = await desk.case(case_id)
    assert case.status == timeline_pb2.CASE_STATUS_RESOLVED
    assert case.time_to_resolution.ToTimedelta() == timedelta(hours=40)
    assert case.resolution_summary == "Resent"
    assert (await desk.customer(customer_id)).open_case_id == ""
    assert await desk.list_cases(escalated_only=True) == []

    csat = builders.agent_action(
        t, customer_id, case_id=case_id, at=at(41 * 60), csat=pb.CsatResponse(score=5, comment="ok")
    )
    await desk.record(csat)
    case = await desk.case(case_id)
    assert (case.csat.score, case.csat.comment) == (5, "ok")
    assert case.status == timeline_pb2.CASE_STATUS_RESOLVED

    # An email two days later reopens it; one after another four days opens a new case.
    mail = builders.email(
        t,
        from_address="yui@example.jp",
        extra_identifiers=[pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=PHONE)],
        at=at(40 * 60 + 48 * 60),
    )
    [reopened] = await desk.record(mail)
    assert reopened.case_id == case_id
    case = await desk.case(case_id)
    assert (case.status, case.reopen_count) == (timeline_pb2.CASE_STATUS_OPEN, 1)
    assert list(case.channels) == [pb.CHANNEL_CHAT, pb.CHANNEL_VOICE, pb.CHANNEL_EMAIL]
    assert (await desk.customer(customer_id)).open_case_id == case_id
    await desk.record(
        builders.agent_action(
            t, customer_id, at=at(90 * 60), resolution=pb.ResolutionAction(summary="again")
        )
    )
    [fresh] = await desk.record(caller(t, PHONE, 90 * 60 + 73 * 60))
    assert fresh.case_id not in {"", case_id}
    assert (await desk.customer(customer_id)).open_case_id == fresh.case_id
    assert (await desk.case(case_id)).reopen_count == 1
    assert await desk.list_cases(customer_id=customer_id) == [fresh.case_id, case_id]


async def test_one_batch_assigns_cases_in_order_and_reads_each_customers_cases_once(
    desk: Desk,
) -> None:
    t = desk.tenant
    earlier = await desk.record(*[builders.chat(t, visitor=f"e{i}", at=at(i)) for i in range(3)])
    known = {o.customer_id for o in earlier}
    open_cases = {o.case_id for o in earlier}
    reads: list[str] = []
    by_id: list[list[str]] = []
    recent, recent_of, get = (
        desk.store.cases.recent,
        desk.store.cases.recent_of,
        desk.store.cases.get,
    )

    async def counted(tenant: str, customer_id: str, *, limit: int = 20) -> list[CaseDoc]:
        reads.append(customer_id)
        return await recent(tenant, customer_id, limit=limit)

    async def counted_many(
        tenant: str, customer_ids: Iterable[str], *, limit: int = 20
    ) -> dict[str, list[CaseDoc]]:
        wanted = list(customer_ids)
        reads.extend(wanted)
        return await recent_of(tenant, wanted, limit=limit)

    async def counted_get(tenant: str, ids: Iterable[str]) -> dict[str, CaseDoc]:
        wanted = list(ids)
        by_id.append(wanted)
        return await get(tenant, wanted)

    desk.store.cases.recent = counted  # type: ignore[method-assign]
    desk.store.cases.recent_of = counted_many  # type: ignore[method-assign]
    desk.store.cases.get = counted_get  # type: ignore[method-assign]
    batch = [builders.chat(t, visitor=f"v{i % 3}", at=at(10 + i)) for i in range(9)]
    batch += [builders.chat(t, visitor=f"e{i % 3}", at=at(20 + i)) for i in range(6)]
    outcomes = await desk.record(*batch)
    # The customers seen before have their open cases read once, by id, and nothing else:
    # those settle every event here. The batch's new customers have no cases to read, and
    # the cases the batch opened for them are written without being looked for first.
    assert reads == []
    assert [sorted(ids) for ids in by_id] == [sorted(open_cases)]
    by_customer: dict[str, set[str]] = {}
    for outcome in outcomes:
        by_customer.setdefault(outcome.customer_id, set()).add(outcome.case_id)
    assert len({o.case_id for o in outcomes} - open_cases) == 3  # opened by the batch
    assert all(len(cases) == 1 for cases in by_customer.values())
    assert len(by_customer) == 6
    assert {o.customer_id for o in outcomes} >= known
    for case_ids in by_customer.values():
        assert (await desk.case(next(iter(case_ids)))).interaction_count == 3


async def test_an_open_case_gone_idle_leaves_the_choice_to_the_customers_other_cases(
    desk: Desk, tenant: str
) -> None:
    """The batch reads only a customer's open case; when that does not settle an event (the
    case went idle), the customer's other cases decide, as if all had been read.
    """
    day = 24 * 60
    [old] = await desk.record(builders.chat(tenant, visitor="v", at=at(0)))
    [newer] = await desk.record(builders.chat(tenant, visitor="v", at=at(8 * day)))
    assert newer.case_id != old.case_id
    resolve = builders.agent_action(
        tenant,
        old.customer_id,
        case_id=newer.case_id,
        at=at(8 * day + 60),
        resolution=pb.ResolutionAction(summary="Answered"),
    )
    await desk.record(resolve)
    # The idle case is the open one again; the newer one was resolved an hour ago.
    assert (await desk.customer(old.customer_id)).open_case_id == old.case_id

    [back, again] = await desk.record(
        builders.chat(tenant, visitor="v", at=at(8 * day + 120)),
        builders.chat(tenant, visitor="v", at=at(8 * day + 121)),
    )

    assert back.case_id == again.case_id == newer.case_id
    case = await desk.case(newer.case_id)
    assert (case.status, case.reopen_count) == (timeline_pb2.CASE_STATUS_OPEN, 1)
    assert (await desk.case(old.case_id)).interaction_count == 1


async def test_a_follow_up_on_an_older_case_is_completed_beside_another_open_case(
    desk: Desk, tenant: str
) -> None:
    day = 24 * 60
    [first] = await desk.record(builders.chat(tenant, visitor="v", at=at(0)))
    transfer = builders.agent_action(
        tenant,
        first.customer_id,
        case_id=first.case_id,
        at=at(1),
        transfer=pb.TransferAction(to_department="logistics", reason="trace the parcel"),
    )
    await desk.record(transfer)
    [second] = await desk.record(builders.chat(tenant, visitor="v", at=at(8 * day)))
    assert (await desk.customer(first.customer_id)).open_case_id == second.case_id
    task = task_id_for(tenant, transfer.event_id)
    done = builders.agent_action(
        tenant,
        first.customer_id,
        at=at(8 * day + 5),
        complete_follow_up=pb.CompleteFollowUpAction(task_id=task),
    )

    # A chat first, so the batch reads the customer ahead, with only its open case.
    [chat, completed] = await desk.record(
        builders.chat(tenant, visitor="v", at=at(8 * day + 4)), done
    )

    assert chat.case_id == second.case_id
    assert completed.case_id == first.case_id
    [follow_up] = (await desk.case(first.case_id)).follow_ups
    assert follow_up.done


async def test_an_agent_action_naming_another_customers_case_is_refused_and_the_rest_lands(
    desk: Desk, tenant: str
) -> None:
    [mine] = await desk.record(builders.chat(tenant, visitor="mine", at=at(0)))
    [theirs] = await desk.record(builders.chat(tenant, visitor="theirs", at=at(1)))
    [foreign] = await desk.record(builders.chat(f"{tenant}-b", visitor="x", at=at(1)))
    good_note = builders.agent_action(
        tenant, mine.customer_id, at=at(2), note=pb.NoteAction(text="fine")
    )
    hijack = builders.agent_action(
        tenant,
        mine.customer_id,
        case_id=theirs.case_id,
        at=at(3),
        resolution=pb.ResolutionAction(summary="closing someone else's case"),
    )
    cross_tenant = builders.agent_action(
        tenant, mine.customer_id, case_id=foreign.case_id, at=at(3), tag=pb.TagAction(tags=["x"])
    )
    unknown_task = builders.agent_action(
        tenant,
        mine.customer_id,
        at=at(4),
        complete_follow_up=pb.CompleteFollowUpAction(task_id="fup_nope"),
    )
    also_good = builders.chat(tenant, visitor="mine", at=at(5))

    outcomes = await desk.recorder.record_batch(
        [good_note, hijack, cross_tenant, unknown_task, also_good]
    )

    for refused in outcomes[1:4]:
        assert isinstance(refused, PermanentError), refused
    assert theirs.case_id in str(outcomes[1])
    good = [o for o in (outcomes[0], outcomes[4]) if isinstance(o, Recorded)]
    assert [o.case_id for o in good] == [mine.case_id, mine.case_id]
    assert (await desk.case(theirs.case_id)).status == timeline_pb2.CASE_STATUS_OPEN
    assert (await desk.case(mine.case_id)).interaction_count == 3


async def test_a_contact_after_the_attach_window_opens_a_new_case(desk: Desk, tenant: str) -> None:
    [first] = await desk.record(builders.chat(tenant, visitor="v", at=at(0)))
    [second] = await desk.record(builders.chat(tenant, visitor="v", at=at(8 * 24 * 60)))
    assert second.case_id not in {"", first.case_id}
    assert (await desk.customer(first.customer_id)).open_case_id == second.case_id
    # The stale case stays open for a supervisor to close; it is not joined any more.
    assert (await desk.case(first.case_id)).status == timeline_pb2.CASE_STATUS_OPEN


async def test_list_cases_filters_and_pages_newest_first(desk: Desk, tenant: str) -> None:
    case_ids = []
    for i in range(7):
        [rec] = await desk.record(builders.chat(tenant, visitor=f"c{i}", at=at(i)))
        case_ids.append(rec.case_id)
        if i % 2:
            await desk.record(
                builders.agent_action(
                    tenant,
                    rec.customer_id,
                    agent=f"agent-{i % 3}",
                    at=at(i + 0.5),
                    progress_update=pb.ProgressUpdateAction(message="on it"),
                )
            )
    newest_first = case_ids[::-1]
    assert await desk.list_cases() == newest_first
    pending = [c for i, c in enumerate(case_ids) if i % 2][::-1]
    assert await desk.list_cases(statuses=[timeline_pb2.CASE_STATUS_PENDING]) == pending
    # Agents 1, 0, 2 answered cases 1, 3, 5: the first agent to act owns the case.
    assert await desk.list_cases(owner_agent_id="agent-1") == [case_ids[1]]
    assert await desk.list_cases(owner_agent_id="agent-2", customer_id="cus_nobody") == []
    assert await desk.list_cases(
        statuses=[timeline_pb2.CASE_STATUS_OPEN, timeline_pb2.CASE_STATUS_RESOLVED]
    ) == [c for c in newest_first if c not in pending]

    seen: list[str] = []
    after = ""
    while True:
        page = await desk.api.ListCases(
            timeline_pb2.ListCasesRequest(tenant=tenant, page_size=3, after=after)
        )
        seen.extend(c.id for c in page.cases)
        if not page.has_more:
            break
        after = page.next_cursor
    assert seen == newest_first


async def test_get_cases_keeps_the_order_and_blanks_missing_and_foreign_ids(
    desk: Desk, tenant: str
) -> None:
    [a] = await desk.record(builders.chat(tenant, visitor="a", at=at(0)))
    [b] = await desk.record(builders.chat(tenant, visitor="b", at=at(1)))
    [foreign] = await desk.record(builders.chat(f"{tenant}-b", visitor="a", at=at(1)))
    asked = [b.case_id, "case_missing", a.case_id, foreign.case_id, "", b.case_id]
    answer = await desk.api.GetCases(timeline_pb2.GetCasesRequest(tenant=tenant, case_ids=asked))
    assert [c.id for c in answer.cases] == [b.case_id, "", a.case_id, "", "", b.case_id]
    assert answer.cases[1] == timeline_pb2.Case()
    assert answer.cases[0].customer_id == b.customer_id
    assert answer.cases[0].tenant == tenant
    full = await desk.api.GetCases(
        timeline_pb2.GetCasesRequest(tenant=tenant, case_ids=[a.case_id] * 500)
    )
    assert len(full.cases) == 500


async def test_search_customers_by_name_prefix_in_any_width_case_or_kana(
    desk: Desk, tenant: str
) -> None:
    names = {
        "yui": "Tanaka Yui",
        "taro": "田中 太郎",
        "kana": "タナカ ハナコ",
        "sato": "Sato Ken",
    }
    ids = {}
    for i, (visitor, name) in enumerate(names.items()):
        [rec] = await desk.record(builders.chat(tenant, visitor=visitor, name=name, at=at(i)))
        ids[visitor] = rec.customer_id

    assert await desk.search("tana") == [ids["yui"]]
    assert await desk.search("ＴＡＮＡ") == [ids["yui"]]  # full-width input
    assert await desk.search("tanaka y") == [ids["yui"]]
    assert await desk.search("田中") == [ids["taro"]]
    assert await desk.search("田中太") == [ids["taro"]]
    assert await desk.search("たなか") == [ids["kana"]]
    assert await desk.search("ﾀﾅｶ") == [ids["kana"]]  # half-width katakana
    assert await desk.search("zz") == []
    # Newest contact first.
    [rec] = await desk.record(builders.chat(tenant, visitor="v-aoi", name="Tanabe Aoi", at=at(9)))
    assert await desk.search("tana") == [rec.customer_id, ids["yui"]]
    assert await desk.search("tana", limit=1) == [rec.customer_id]
    # Other tenants' customers are invisible.
    found = await desk.api.SearchCustomers(
        timeline_pb2.SearchCustomersRequest(tenant=f"{tenant}-b", query="tana")
    )
    assert list(found.customers) == []


async def test_search_customers_by_identifier_prefix_and_never_a_merged_customer(
    desk: Desk, tenant: str
) -> None:
    [by_phone] = await desk.record(
        builders.chat(tenant, visitor="p", phone="090-5555-1234", name="Mori Aki", at=at(0))
    )
    email = pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value="aki.mori@example.jp")
    first_mail = builders.email(
        tenant, from_address="aki.mori@example.jp", extra_identifiers=[email], at=at(1)
    )
    first_mail.actor.display_name = "Mori Akiko"
    [by_email] = await desk.record(first_mail)
    assert by_phone.customer_id != by_email.customer_id
    assert await desk.search("mori") == [by_email.customer_id, by_phone.customer_id]
    assert await desk.search("090-5555") == [by_phone.customer_id]
    assert await desk.search("０９０５５５５") == [by_phone.customer_id]
    assert await desk.search("+81 90 5555") == [by_phone.customer_id]
    assert await desk.search("Aki.Mori@") == [by_email.customer_id]

    # An email carrying the phone number (both verified) links them: one customer survives.
    linking = builders.verified(
        builders.email(
            tenant,
            from_address="aki.mori@example.jp",
            extra_identifiers=[
                email,
                pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value="09055551234"),
            ],
            at=at(2),
        )
    )
    [linked] = await desk.record(linking)
    assert linked.merged_ids == [by_email.customer_id]
    assert await desk.search("aki.mori") == [by_phone.customer_id]
    assert await desk.search("090-5555") == [by_phone.customer_id]
    assert await desk.search("mori") == [by_phone.customer_id]

    # The merge moved the merged customer's case (CaseStore.repoint), keeping where it began;
    # doing it again finds nothing left to move.
    cases = desk.store.cases
    assert await cases.repoint(tenant, [by_email.customer_id], by_phone.customer_id) == 0
    moved = (await cases.get(tenant, [by_email.case_id]))[by_email.case_id]
    assert moved["customer_id"] == by_phone.customer_id
    assert moved["origin_customer_id"] == by_email.customer_id


async def test_case_and_search_rpcs_refuse_hostile_input_naming_the_field(
    desk: Desk, tenant: str
) -> None:
    api = desk.api
    for bad in ("", "Acme", "a.b", "*"):
        await desk.refused(api.GetCases(timeline_pb2.GetCasesRequest(tenant=bad)), "tenant")
        await desk.refused(api.ListCases(timeline_pb2.ListCasesRequest(tenant=bad)), "tenant")
        await desk.refused(
            api.SearchCustomers(timeline_pb2.SearchCustomersRequest(tenant=bad, query="ta")),
            "tenant",
        )
    await desk.refused(
        api.GetCases(
            timeline_pb2.GetCasesRequest(tenant=tenant, case_ids=[f"c{i}" for i in range(501)])
        ),
        "case_ids",
    )
    for size in (-1, 201):
        await desk.refused(
            api.ListCases(timeline_pb2.ListCasesRequest(tenant=tenant, page_size=size)),
            "page_size",
        )
    for after in ("not a cursor!!", "A" * 100_000, "W10"):
        await desk.refused(
            api.ListCases(timeline_pb2.ListCasesRequest(tenant=tenant, after=after)), "after"
        )
    await desk.refused(
        api.ListCases(
            timeline_pb2.ListCasesRequest(
                tenant=tenant,
                filter=timeline_pb2.CaseFilter(statuses=[99]),  # type: ignore[list-item]
            )
        ),
        "filter.statuses",
    )
    await desk.refused(
        api.ListCases(
            timeline_pb2.ListCasesRequest(
                tenant=tenant, filter=timeline_pb2.CaseFilter(owner_agent_id="x" * 1000)
            )
        ),
        "filter.owner_agent_id",
    )
    for query in ("", "a", " ", "ａ", "x" * 101, "ta\x00", "ta\u200b"):
        await desk.refused(
            api.SearchCustomers(timeline_pb2.SearchCustomersRequest(tenant=tenant, query=query)),
            "query",
        )
    for limit in (-1, 51):
        await desk.refused(
            api.SearchCustomers(
                timeline_pb2.SearchCustomersRequest(tenant=tenant, query="ta", limit=limit)
            ),
            "limit",
        )
    # Regex and operator characters are data, not syntax.
    for query in (".*", "^t", '{"$gt": ""}', "\\d+"):
        assert await desk.search(query) == []
    # An unknown customer filter is an empty list, not an error.
    assert await desk.list_cases(customer_id="cus_nobody") == []


async def test_replaying_the_same_events_into_an_empty_database_gives_the_same_cases(
    mongodb_uri: str, tenant: str
) -> None:
    customer_chat = builders.chat(tenant, visitor="r", phone=PHONE, at=at(0))
    events = [customer_chat, caller(tenant, PHONE, 10)]
    results = []
    for name in ("replay_a", "replay_b"):
        async with timeline_db(mongodb_uri, f"{name}_{tenant}") as store:
            recorder = build_core(store, identity_for=lambda _t: IdentityPolicy("JP")).recorder
            [first, second] = await recorder.record_batch(events)
            assert isinstance(first, Recorded)
            assert isinstance(second, Recorded)
            customer_id = first.customer_id
            more = builders.agent_action(
                tenant, customer_id, at=at(20), resolution=pb.ResolutionAction(summary="s")
            )
            more.event_id = f"resolve-{tenant}"
            await recorder.record(more)
            results.append((await store.cases.get(tenant, [first.case_id]))[first.case_id])
    assert results[0] == results[1]
    assert results[0]["status"] == "resolved"


async def test_a_case_lost_between_the_log_and_the_case_write_is_rebuilt_on_redelivery(
    desk: Desk, tenant: str
) -> None:
    chat = builders.chat(tenant, visitor="crash", at=at(0))
    reply = builders.agent_reply(tenant, visitor="crash", text="hi", at=at(3))
    [rec, _] = await desk.record(chat, reply)
    # As if the process died after the log insert of the reply, before its case write.
    await desk.store.db["cases"].delete_one({"_id": rec.case_id})
    await desk.store.db["interactions"].update_one(
        {"tenant": tenant, "event_id": reply.event_id}, {"$set": {"projected": False}}
    )
    [again] = await desk.record(reply)
    assert again.duplicate
    case = await desk.case(rec.case_id)
    assert case.interaction_count == 2
    assert case.status == timeline_pb2.CASE_STATUS_PENDING
    assert case.first_response_time.ToTimedelta() == timedelta(minutes=3)
    assert (await desk.customer(rec.customer_id)).open_case_id == rec.case_id


async def test_the_stream_dead_letters_an_action_on_a_foreign_case_and_announces_case_updates(
    run_timeline: Starter, nats_server: NatsServer, tenant: str, callers: CallerSet
) -> None:
    async with open_bus(run_timeline, nats_server, tenant, callers) as bus:
        updates: asyncio.Queue[notices_pb2.TimelineUpdated] = asyncio.Queue()

        async def heard(msg: Msg) -> None:
            notice = decode_notice(msg.data)
            assert notice is not None
            await updates.put(notice)

        await bus.nc.subscribe(f"timeline.updated.{tenant}.>", cb=heard)
        mine = builders.chat(tenant, visitor="mine")
        theirs = builders.chat(tenant, visitor="theirs")
        for chat in (mine, theirs):
            await bus.publish(chat.SerializeToString())
        owners = await bus.recorded([mine.event_id, theirs.event_id])
        announced: dict[str, notices_pb2.TimelineUpdated] = {}
        while len(announced) < 2:
            notice = await asyncio.wait_for(updates.get(), 10)
            announced[notice.event_id] = notice
        mine_case = case_id_for(tenant, mine.event_id)
        assert announced[mine.event_id].case_id == mine_case
        assert announced[mine.event_id].case_status == timeline_pb2.CASE_STATUS_OPEN
        # The notice carries the stored entry: a reader needs no second round trip.
        assert announced[mine.event_id].entry.interaction.event_id == mine.event_id
        assert announced[mine.event_id].entry.case_id == mine_case

        subject = f"interactions.{tenant}.agent_desk"
        hijack = builders.agent_action(
            tenant,
            owners[mine.event_id],
            case_id=case_id_for(tenant, theirs.event_id),
            resolution=pb.ResolutionAction(summary="not yours"),
        )
        escalate = builders.agent_action(
            tenant, owners[mine.event_id], escalation=pb.EscalationAction(level=1, reason="VIP")
        )
        for action in (hijack, escalate):
            await bus.publish_action(action)
        await bus.recorded([escalate.event_id])
        assert await bus.stored([hijack.event_id]) == set()
        [dead] = await bus.dead_letters(subject)
        assert case_id_for(tenant, theirs.event_id) in header(dead, ERROR_HEADER)
        notice = await asyncio.wait_for(updates.get(), 10)
        assert (notice.event_id, notice.case_id, notice.case_status) == (
            escalate.event_id,
            mine_case,
            timeline_pb2.CASE_STATUS_ESCALATED,
        )
