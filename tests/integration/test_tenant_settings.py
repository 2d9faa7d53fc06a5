"""Every per-tenant setting, through the real start path: environment in, behaviour out.

The timeline and the SMS ingestor run as `python -m services.<name>` processes configured
only by TSUNAGU_* variables (parsed by the real settings classes), and are observed only
through NATS and gRPC. Each test compares a tenant with one setting overridden against a
tenant on the defaults, fed the same events, so each fails if that setting's wiring is lost
(per-tenant case windows were once parsed and never used, and no test noticed).

The processes get a NATS server of their own: the timeline consumes `interactions.>` as in
production, which on the shared server would take (and dead-letter again) every other test's
messages. Time moves through the events' `occurred_at`, never by sleeping.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import nats
import pytest
from nats.js import JetStreamContext
from pymongo import AsyncMongoClient

from tests import builders
from tests.action_keys import session_action_keys
from tests.conftest import _quiet_sink
from tests.grpc_credentials import caller_set, channel_for
from tests.integration.test_ingest_to_timeline import wait_for_events
from tsunagu.bus.provision import ProvisionSettings, provision
from tsunagu.bus.publisher import InteractionPublisher
from tsunagu.local.processes import ManagedProcess, NatsServer
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc, timeline_pb2, timeline_pb2_grpc
from tsunagu.v1 import interaction_pb2 as pb

REPO = Path(__file__).resolve().parents[2]
_RUN = uuid.uuid4().hex[:8]

# One tenant per overridden setting, and one on the defaults to compare with.
PLAIN = f"plain{_RUN}"
US = f"us{_RUN}"
ATTACH = f"attach{_RUN}"
REOPEN = f"reopen{_RUN}"
FOLLOW_UP = f"followup{_RUN}"
BLOCKLIST = f"blocklist{_RUN}"
FOLD = f"fold{_RUN}"
LIMITED = f"limited{_RUN}"

TIMELINE_ENV = {
    "TSUNAGU_TIMELINE_TENANT_REGIONS": json.dumps({US: "US"}),
    "TSUNAGU_TIMELINE_TENANT_CASE_WINDOWS": json.dumps(
        {
            ATTACH: {"attach_window": "PT1H"},
            REOPEN: {"reopen_window": "PT1H"},
            FOLLOW_UP: {"follow_up_due": "PT2H"},
        }
    ),
    "TSUNAGU_TIMELINE_TENANT_IDENTITY": json.dumps(
        {
            BLOCKLIST: {"blocklist": ["email:info@shop.example"]},
            FOLD: {"fold_email_subaddress": True},
            LIMITED: {"max_customers_per_identifier": 1},
        }
    ),
}
INGEST_ENV = {"TSUNAGU_INGEST_TENANT_REGIONS": json.dumps({US: "US"})}
CALLERS = caller_set([PLAIN, US, ATTACH, REOPEN, FOLLOW_UP, BLOCKLIST, FOLD, LIMITED])

# Two days ago: every event of a test fits before "now" (the contract's future bound).
T0 = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class Running:
    """The processes' interfaces: publish onto the stream, ask the timeline, submit to SMS."""

    js: JetStreamContext
    timeline: timeline_pb2_grpc.TimelineServiceAsyncStub
    sms: ingest_pb2_grpc.IngestServiceAsyncStub

    async def record(self, *interactions: pb.Interaction) -> dict[str, str]:
        """Publish straight onto the stream, in order; returns event id → customer id."""
        publisher = InteractionPublisher(self.js, signer=session_action_keys().signer)
        for interaction in interactions:
            await publisher.publish(interaction)
        return await self.stored(interactions)

    async def stored(self, interactions: tuple[pb.Interaction, ...]) -> dict[str, str]:
        owners: dict[str, str] = {}
        for tenant in dict.fromkeys(i.tenant for i in interactions):
            ids = [i.event_id for i in interactions if i.tenant == tenant]
            owners.update(await wait_for_events(self.timeline, tenant, ids))
        return owners

    async def cases(self, tenant: str, customer_id: str) -> list[timeline_pb2.Case]:
        """The customer's cases, oldest first."""
        found = await self.timeline.ListCases(
            timeline_pb2.ListCasesRequest(
                tenant=tenant, filter=timeline_pb2.CaseFilter(customer_id=customer_id)
            )
        )
        return sorted(found.cases, key=lambda c: c.opened_at.ToDatetime())

    async def first_contact(self, tenant: str, visitor: str) -> tuple[str, timeline_pb2.Case]:
        """A chat at T0 from a new visitor: its customer, and the case it opened."""
        first = builders.chat(tenant, visitor=visitor, at=at(0))
        customer_id = (await self.record(first))[first.event_id]
        [case] = await self.cases(tenant, customer_id)
        return customer_id, case

    async def owner_of(self, tenant: str, identifier: pb.Identifier) -> str:
        """Who the timeline's screen-pop finds for `identifier`; "" for nobody."""
        try:
            found = await self.timeline.ResolveIdentifier(
                timeline_pb2.ResolveIdentifierRequest(tenant=tenant, identifier=identifier)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return ""
        return found.customer.id


def _service(module: str, ready: str, env: dict[str, str]) -> ManagedProcess:
    return ManagedProcess(
        module,
        [sys.executable, "-m", module],
        ready_pattern=rf"{ready} ready on (?P<address>\S+)",
        env=env,
        cwd=REPO,
        sink=_quiet_sink,
    )


def _address(process: ManagedProcess) -> str:
    assert process.ready_match is not None
    return process.ready_match["address"]


@pytest.fixture(scope="module")
async def running(
    tmp_path_factory: pytest.TempPathFactory, mongodb_uri: str
) -> AsyncIterator[Running]:
    database = f"settings_{_RUN}"
    async with NatsServer(tmp_path_factory.mktemp("settings-nats"), sink=_quiet_sink) as server:
        await provision(ProvisionSettings(nats_url=server.url))
        timeline_env = {
            **TIMELINE_ENV,
            "TSUNAGU_TIMELINE_PORT": "0",
            "TSUNAGU_TIMELINE_ACTION_VERIFY_KEY_FILES": json.dumps(
                [str(session_action_keys().public)]
            ),
            "TSUNAGU_TIMELINE_NATS_URL": server.url,
            "TSUNAGU_TIMELINE_MONGODB_URI": mongodb_uri,
            "TSUNAGU_TIMELINE_MONGODB_DATABASE": database,
            "TSUNAGU_TIMELINE_CALLERS": CALLERS.json(),
        }
        ingest_env = {
            **INGEST_ENV,
            "TSUNAGU_INGEST_CHANNEL": "sms",
            "TSUNAGU_INGEST_PORT": "0",
            "TSUNAGU_INGEST_NATS_URL": server.url,
            "TSUNAGU_INGEST_CALLERS": CALLERS.json(),
        }
        async with (
            _service("services.timeline", "timeline", timeline_env) as timeline,
            _service("services.ingest", "ingest-sms", ingest_env) as sms,
        ):
            nc = await nats.connect(server.url)
            timeline_channel = channel_for(_address(timeline), CALLERS.service)
            sms_channel = channel_for(_address(sms), CALLERS.adapter("sms"))
            try:
                yield Running(
                    js=nc.jetstream(),
                    timeline=timeline_pb2_grpc.TimelineServiceStub(timeline_channel),
                    sms=ingest_pb2_grpc.IngestServiceStub(sms_channel),
                )
            finally:
                await sms_channel.close(grace=None)
                await timeline_channel.close(grace=None)
                await nc.close()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_uri)
    await client.drop_database(database)
    await client.close()


def phone(value: str) -> pb.Identifier:
    return pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=value)


# -- tenant_regions ----------------------------------------------------------------------------


async def test_timeline_reads_a_national_number_in_the_tenants_region(running: Running) -> None:
    # Published straight onto the stream: the timeline normalises the number itself.
    us_chat = builders.chat(US, visitor="region-1", phone="202-555-0143", at=at(0))
    plain_chat = builders.chat(PLAIN, visitor="region-1", phone="202-555-0143", at=at(0))
    owners = await running.record(us_chat, plain_chat)

    us_number = phone("+1 202-555-0143")
    assert await running.owner_of(US, us_number) == owners[us_chat.event_id]
    assert await running.owner_of(PLAIN, us_number) == ""  # read as a Japanese number


async def test_sms_ingestion_reads_a_national_number_in_the_tenants_region(
    running: Running,
) -> None:
    submitted: dict[str, pb.Interaction] = {}
    for tenant in (US, PLAIN):
        sms = builders.sms(tenant, from_number="415-555-0199", at=at(0))
        response = await running.sms.Submit(ingest_pb2.SubmitRequest(interaction=sms))
        assert response.result.status == ingest_pb2.SubmitResult.STATUS_ACCEPTED, response
        submitted[tenant] = sms
    owners = await running.stored(tuple(submitted.values()))

    us_number = phone("+1 415-555-0199")
    assert await running.owner_of(US, us_number) == owners[submitted[US].event_id]
    assert await running.owner_of(PLAIN, us_number) == ""


# -- tenant_case_windows -----------------------------------------------------------------------


async def test_a_shorter_attach_window_opens_a_new_case_where_the_default_attaches(
    running: Running,
) -> None:
    counts = {}
    for tenant in (ATTACH, PLAIN):
        first = builders.chat(tenant, visitor="attach-1", at=at(0))
        two_hours_later = builders.chat(tenant, visitor="attach-1", at=at(120))
        owners = await running.record(first, two_hours_later)
        counts[tenant] = len(await running.cases(tenant, owners[first.event_id]))
    assert counts == {ATTACH: 2, PLAIN: 1}  # ATTACH's window is one hour, the default 7 days


async def test_a_shorter_reopen_window_opens_a_new_case_where_the_default_reopens(
    running: Running,
) -> None:
    outcomes = {}
    for tenant in (REOPEN, PLAIN):
        customer_id, case = await running.first_contact(tenant, "reopen-1")
        summary = pb.ResolutionAction(summary="Parcel found")
        resolved = builders.agent_action(
            tenant, customer_id, case_id=case.id, at=at(10), resolution=summary
        )
        again = builders.chat(tenant, visitor="reopen-1", at=at(130))
        await running.record(resolved, again)
        cases = await running.cases(tenant, customer_id)
        outcomes[tenant] = [(c.id == case.id, c.reopen_count) for c in cases]
    # REOPEN's window is one hour (the contact came two hours after the resolution): a new
    # case; on the default 72 hours the resolved case reopens.
    assert outcomes == {REOPEN: [(True, 0), (False, 0)], PLAIN: [(True, 1)]}


async def _follow_up_due_after_transfer(running: Running, tenant: str) -> timedelta:
    customer_id, case = await running.first_contact(tenant, "follow-up-1")
    action = pb.TransferAction(to_department="logistics", reason="trace the parcel")
    await running.record(
        builders.agent_action(tenant, customer_id, case_id=case.id, at=at(5), transfer=action)
    )
    [case] = await running.cases(tenant, customer_id)
    [task] = case.follow_ups
    return task.due_at.ToDatetime(tzinfo=UTC) - at(5)


async def test_a_tenants_follow_up_due_sets_when_a_transfers_follow_up_falls_due(
    running: Running,
) -> None:
    assert await _follow_up_due_after_transfer(running, FOLLOW_UP) == timedelta(hours=2)
    assert await _follow_up_due_after_transfer(running, PLAIN) == timedelta(hours=24)


# -- tenant_identity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant", "first", "second", "linked_by_the_rule"),
    [
        # A blocklisted address links nobody; on the defaults it links the two visitors.
        (BLOCKLIST, "info@shop.example", "INFO@shop.example", False),
        # Folding sub-addresses links a tagged mailbox to the plain one; the default does not.
        (FOLD, "hanako@example.jp", "Hanako+shop@example.jp", True),
    ],
    # Named without the run's random tenant suffix: every xdist worker collects the same ids.
    ids=["blocklist", "fold"],
)
async def test_a_tenants_identity_rules_decide_whether_two_mailboxes_are_one_customer(
    running: Running, tenant: str, first: str, second: str, linked_by_the_rule: bool
) -> None:
    linked = {}
    for each in (tenant, PLAIN):
        one = builders.chat(each, visitor=f"{tenant}-1", email=first, at=at(0))
        two = builders.chat(each, visitor=f"{tenant}-2", email=second, at=at(60))
        owners = await running.record(one, two)
        linked[each] = owners[one.event_id] == owners[two.event_id]
    assert linked == {tenant: linked_by_the_rule, PLAIN: not linked_by_the_rule}


async def test_an_identifier_may_join_no_more_customers_than_the_tenant_allows(
    running: Running,
) -> None:
    merged = {}
    for tenant in (LIMITED, PLAIN):
        line = "03-9999-0000"
        a = builders.chat(tenant, visitor="line-a", email="a@example.jp", phone=line, at=at(0))
        b = builders.chat(tenant, visitor="line-b", email="b@example.jp", at=at(60))
        await running.record(a, b)
        # b now presents a's line: merging a and b makes the line join two customers.
        b_with_line = builders.verified(
            builders.chat(tenant, visitor="line-b", email="b@example.jp", phone=line, at=at(120))
        )
        await running.record(b_with_line)
        owners = await running.stored((a, b))
        merged[tenant] = owners[a.event_id] == owners[b.event_id]
    assert merged == {LIMITED: False, PLAIN: True}  # LIMITED allows one customer, default 3
