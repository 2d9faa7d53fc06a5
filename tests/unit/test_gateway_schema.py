"""The gateway's GraphQL schema, run in-process against a real gRPC server with a fake timeline."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from strawberry.types import ExecutionResult

from gateway.auth import Principal
from gateway.context import GatewayContext
from gateway.enums import PROTO_ENUMS, ProtoEnumMapping
from gateway.schema import GatewaySchema, build_schema
from gateway.settings import GatewaySettings
from gateway.timeline_client import TIMELINE_SERVICE_NAME, TimelineClient
from tsunagu.grpc_auth import ServerInterceptor
from tsunagu.grpc_settings import ServerSecurity
from tsunagu.rpc import GrpcServer
from tsunagu.v1 import (
    interaction_pb2,
    privacy_pb2,
    privacy_pb2_grpc,
    timeline_pb2,
    timeline_pb2_grpc,
)

TENANT = "acme"
PHONE_AS_TYPED = "090-1234-5678"
# Ids the fake answers with a failure instead of a customer.
SLOW_ID = "slow"
BROKEN_ID = "broken"
INVALID_PHONE = "not-a-phone"

ServicerContext = grpc.aio.ServicerContext[Any, Any]


def _ts(iso: str) -> Timestamp:
    timestamp = Timestamp()
    timestamp.FromDatetime(datetime.fromisoformat(iso))
    return timestamp


def _customer(number: int) -> timeline_pb2.Customer:
    if number != 1:
        return timeline_pb2.Customer(
            id=f"c-{number}", tenant=TENANT, display_name=f"Customer {number}"
        )
    return timeline_pb2.Customer(
        id="c-1",
        tenant=TENANT,
        display_name="Yamada Hanako",
        identifiers=[
            interaction_pb2.Identifier(
                kind=interaction_pb2.IDENTIFIER_KIND_PHONE, value="+819012345678", verified=True
            ),
            interaction_pb2.Identifier(
                kind=interaction_pb2.IDENTIFIER_KIND_SOCIAL_HANDLE, value="hanako", network="x"
            ),
        ],
        channels=[interaction_pb2.CHANNEL_CHAT, interaction_pb2.CHANNEL_VOICE],
        first_contact_at=_ts("2025-03-01T09:00:00+00:00"),
        last_contact_at=_ts("2025-03-02T10:30:00+00:00"),
        interaction_count=4,
        # Keyed like the timeline stores it: lower-case channel tokens.
        interactions_by_channel={"voice": 1, "chat": 2, "agent_desk": 1},
        merged_ids=["c-0"],
        protected_identifiers=[
            timeline_pb2.ProtectedIdentifier(
                identifier=interaction_pb2.Identifier(
                    kind=interaction_pb2.IDENTIFIER_KIND_EMAIL, value="info@shop.example"
                ),
                reason="blocklisted",
            ),
            timeline_pb2.ProtectedIdentifier(
                identifier=interaction_pb2.Identifier(
                    kind=interaction_pb2.IDENTIFIER_KIND_PHONE, value="+81312345678"
                ),
                reason="shared",
            ),
            # A kind newer than this gateway: left out rather than mislabelled.
            timeline_pb2.ProtectedIdentifier(
                identifier=interaction_pb2.Identifier(kind=99, value="?"),  # type: ignore[arg-type]
                reason="invalid",
            ),
        ],
    )


CUSTOMERS = {customer.id: customer for customer in map(_customer, range(1, 13))}
for _number, _found in enumerate(CUSTOMERS.values(), start=1):
    # Each customer's open case is outside the listed cases, so loading it is a real batch.
    _found.open_case_id = f"open-{_number}"
CUSTOMERS["c-1"].last_agent_remark.CopyFrom(
    timeline_pb2.AgentRemark(
        event_id="ev-note",
        kind=interaction_pb2.KIND_HANDOFF,
        agent=interaction_pb2.Actor(
            type=interaction_pb2.ACTOR_TYPE_AGENT, id="agent-7", display_name="Sato"
        ),
        text="Wants to cancel; offer a discount",
        open_questions=["Which plan?"],
        occurred_at=_ts("2025-03-02T10:30:00+00:00"),
        case_id="case-1",
    )
)


def _case(case_id: str, customer_id: str, status: int) -> timeline_pb2.Case:
    return timeline_pb2.Case(
        id=case_id,
        tenant=TENANT,
        customer_id=customer_id,
        status=status,  # type: ignore[arg-type]
        owner_agent_id="agent-7",
        channels=[interaction_pb2.CHANNEL_CHAT, interaction_pb2.CHANNEL_VOICE],
        last_channel=interaction_pb2.CHANNEL_VOICE,
        opened_at=_ts("2025-03-01T09:00:00+00:00"),
        updated_at=_ts("2025-03-02T10:30:00+00:00"),
    )


CASES = {
    case.id: case
    for case in [
        *(
            _case(f"case-{n}", f"c-{(n - 1) % 12 + 1}", timeline_pb2.CASE_STATUS_PENDING)
            for n in range(1, 61)
        ),
        *(_case(f"open-{n}", f"c-{n}", timeline_pb2.CASE_STATUS_OPEN) for n in range(1, 13)),
    ]
}
_detailed = CASES["case-1"]
_detailed.status = timeline_pb2.CASE_STATUS_ESCALATED
_detailed.queue = "subscriptions"
_detailed.department = "billing"
_detailed.escalation_level = 2
_detailed.escalation_reason = "Charged twice"
_detailed.first_response_at.CopyFrom(_ts("2025-03-01T09:02:30+00:00"))
_detailed.first_response_time.FromSeconds(150)
_detailed.time_to_resolution.FromMilliseconds(90_061_500)
_detailed.reopen_count = 1
_detailed.tags.extend(["billing", "refund"])
_detailed.csat.CopyFrom(interaction_pb2.CsatResponse(score=4, comment="Quick, thanks"))
_detailed.cancellation_request.CopyFrom(
    interaction_pb2.CancellationRequestAction(
        reason=interaction_pb2.CANCELLATION_REASON_OTHER, reason_detail="Moving abroad"
    )
)
_detailed.cancellation_outcome = interaction_pb2.CANCELLATION_OUTCOME_RETAINED
_detailed.follow_ups.extend(
    [
        timeline_pb2.FollowUpTask(
            id="task-late",
            case_id="case-1",
            agent_id="agent-7",
            reason="Call back after billing checked",
            created_by_event_id="ev-transfer",
            created_at=_ts("2025-03-01T10:00:00+00:00"),
            due_at=_ts("2025-03-02T10:00:00+00:00"),
        ),
        timeline_pb2.FollowUpTask(
            id="task-future",
            case_id="case-1",
            agent_id="agent-7",
            due_at=_ts("2999-01-01T00:00:00+00:00"),
        ),
        timeline_pb2.FollowUpTask(
            id="task-done",
            case_id="case-1",
            due_at=_ts("2025-03-02T10:00:00+00:00"),
            done=True,
            done_at=_ts("2025-03-02T09:00:00+00:00"),
            done_by_event_id="ev-done",
        ),
    ]
)
_detailed.last_handoff.CopyFrom(
    interaction_pb2.HandoffAction(
        to_channel=interaction_pb2.CHANNEL_VOICE, summary="Call her back", open_questions=["Plan?"]
    )
)
_detailed.interaction_count = 7

MERGE_RECORD = timeline_pb2.MergeRecord(
    id="merge-1",
    survivor_id="c-1",
    merged_ids=["c-0"],
    rule="shared_deterministic_identifier",
    actor=interaction_pb2.Actor(type=interaction_pb2.ACTOR_TYPE_SYSTEM, id="timeline"),
    at=_ts("2025-03-02T10:00:00+00:00"),
    status="split",
    evidence_event_id="ev-call",
    evidence=[
        timeline_pb2.LinkedIdentifier(
            identifier=interaction_pb2.Identifier(
                kind=interaction_pb2.IDENTIFIER_KIND_PHONE, value="+819012345678"
            ),
            customer_id="c-0",
        )
    ],
    split_at=_ts("2025-03-03T10:00:00+00:00"),
    split_by=interaction_pb2.Actor(
        type=interaction_pb2.ACTOR_TYPE_AGENT, id="agent-7", display_name="Sato"
    ),
    split_reason="Two sisters sharing a phone",
)
SUGGESTION = timeline_pb2.MergeSuggestion(
    id="sug-1",
    customer_ids=["c-1", "c-2"],
    signals=["same_name"],
    created_at=_ts("2025-03-02T11:00:00+00:00"),
    status="open",
)


def _entries() -> list[timeline_pb2.TimelineEntry]:
    def entry(cursor: str, interaction: interaction_pb2.Interaction) -> timeline_pb2.TimelineEntry:
        # The chat opened case-1; the call continued it on another channel.
        return timeline_pb2.TimelineEntry(
            interaction=interaction,
            customer_id="c-1",
            recorded_at=_ts("2025-03-02T10:31:00+00:00"),
            cursor=cursor,
            case_id="case-1",
            switched_from=interaction_pb2.CHANNEL_CHAT
            if interaction.channel == interaction_pb2.CHANNEL_VOICE
            else interaction_pb2.CHANNEL_UNSPECIFIED,
        )

    return [
        entry(
            "cur-1",
            interaction_pb2.Interaction(
                event_id="ev-note",
                tenant=TENANT,
                channel=interaction_pb2.CHANNEL_AGENT_DESK,
                kind=interaction_pb2.KIND_HANDOFF,
                direction=interaction_pb2.DIRECTION_INTERNAL,
                occurred_at=_ts("2025-03-02T10:30:00+00:00"),
                actor=interaction_pb2.Actor(
                    type=interaction_pb2.ACTOR_TYPE_AGENT, id="agent-7", display_name="Sato"
                ),
                agent_action=interaction_pb2.AgentActionDetail(
                    case_id="case-1",
                    customer_id="c-1",
                    handoff=interaction_pb2.HandoffAction(
                        to_channel=interaction_pb2.CHANNEL_VOICE,
                        summary="Wants to cancel; offer a discount",
                        open_questions=["Which plan?"],
                    ),
                ),
            ),
        ),
        entry(
            "cur-2",
            interaction_pb2.Interaction(
                event_id="ev-call",
                tenant=TENANT,
                channel=interaction_pb2.CHANNEL_VOICE,
                kind=interaction_pb2.KIND_CALL_ENDED,
                direction=interaction_pb2.DIRECTION_INBOUND,
                occurred_at=_ts("2025-03-02T10:00:00+00:00"),
                conversation_ref="call-42",
                actor=interaction_pb2.Actor(type=interaction_pb2.ACTOR_TYPE_CUSTOMER),
                call=interaction_pb2.CallDetail(
                    call_id="call-42", from_number="+819012345678", duration_seconds=312
                ),
            ),
        ),
        entry(
            "cur-3",
            interaction_pb2.Interaction(
                event_id="ev-chat",
                tenant=TENANT,
                channel=interaction_pb2.CHANNEL_CHAT,
                kind=interaction_pb2.KIND_MESSAGE,
                direction=interaction_pb2.DIRECTION_INBOUND,
                occurred_at=_ts("2025-03-01T09:00:00+00:00"),
                conversation_ref="chat-session-9",
                content=interaction_pb2.Content(text="解約したいです", language="ja"),
                chat=interaction_pb2.ChatDetail(session_id="chat-session-9"),
            ),
        ),
    ]


@dataclass
class FakeTimeline(timeline_pb2_grpc.TimelineServiceServicer):
    """Serves canned data for tenant ``acme`` and records every request it receives."""

    requests: dict[str, list[Any]] = field(default_factory=dict)
    # Event id -> customer id of what "the timeline" has stored (LookupEvents answers from it).
    stored: dict[str, str] = field(default_factory=dict)
    # RPCs to answer with UNIMPLEMENTED, like a timeline older than the gateway.
    unimplemented: set[str] = field(default_factory=set)
    # RPC -> the RPC whose answer it waits for: orders calls a query makes concurrently.
    answer_after: dict[str, str] = field(default_factory=dict)
    answered: dict[str, asyncio.Event] = field(default_factory=dict)
    # What the gateway recorded in the read audit (RecordAccess), kept apart from `requests`
    # (every read records one): (tenant, access).
    accesses: list[tuple[str, privacy_pb2.Access]] = field(default_factory=list)
    # How many RecordAccess calls brought them: batching is asserted on it.
    record_calls: int = 0
    # Set: RecordAccess fails as an audit store that is down does.
    audit_down: bool = False

    def reset(self) -> None:
        self.accesses.clear()
        self.record_calls = 0
        self.audit_down = False
        self.requests.clear()
        self.stored.clear()
        self.unimplemented.clear()
        self.answer_after.clear()
        self.answered.clear()

    def _answering(self, method: str) -> None:
        self.answered.setdefault(method, asyncio.Event()).set()

    async def _turn(self, method: str) -> None:
        first = self.answer_after.get(method)
        if first is not None:
            async with asyncio.timeout(20):
                await self.answered.setdefault(first, asyncio.Event()).wait()

    def calls(self, method: str) -> list[Any]:
        return self.requests.get(method, [])

    def _record(self, method: str, request: Message) -> None:
        self.requests.setdefault(method, []).append(request)

    async def _serve(self, method: str, request: Message, context: ServicerContext) -> None:
        self._record(method, request)
        if method in self.unimplemented:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not built yet")

    async def RecordAccess(
        self, request: privacy_pb2.RecordAccessRequest, context: ServicerContext
    ) -> privacy_pb2.RecordAccessResponse:
        if self.audit_down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the audit could not be recorded")
        self.record_calls += 1
        start = len(self.accesses)
        self.accesses.extend((request.tenant, access) for access in request.accesses)
        return privacy_pb2.RecordAccessResponse(
            sequences=range(start + 1, start + 1 + len(request.accesses))
        )

    async def ListAudit(
        self, request: privacy_pb2.ListAuditRequest, context: ServicerContext
    ) -> privacy_pb2.ListAuditResponse:
        await self._serve("ListAudit", request, context)
        records = [
            privacy_pb2.AuditRecord(tenant=tenant, sequence=number, access=access)
            for number, (tenant, access) in enumerate(self.accesses, start=1)
            if tenant == request.tenant
            and (not request.customer_id or access.customer_id == request.customer_id)
        ]
        return privacy_pb2.ListAuditResponse(records=records[::-1][: request.page_size or 50])

    async def VerifyAuditChain(
        self, request: privacy_pb2.VerifyAuditChainRequest, context: ServicerContext
    ) -> privacy_pb2.VerifyAuditChainResponse:
        await self._serve("VerifyAuditChain", request, context)
        return privacy_pb2.VerifyAuditChainResponse(intact=True, records_checked=len(self.accesses))

    async def ResolveIdentifier(
        self, request: timeline_pb2.ResolveIdentifierRequest, context: ServicerContext
    ) -> timeline_pb2.ResolveIdentifierResponse:
        self._record("ResolveIdentifier", request)
        identifier = request.identifier
        if identifier.value == INVALID_PHONE:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "phone number is not valid")
        known = (
            request.tenant == TENANT
            and identifier.kind == interaction_pb2.IDENTIFIER_KIND_PHONE
            and identifier.value == PHONE_AS_TYPED
        )
        if not known:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no customer has this identifier")
        return timeline_pb2.ResolveIdentifierResponse(customer=CUSTOMERS["c-1"])

    async def GetCustomers(
        self, request: timeline_pb2.GetCustomersRequest, context: ServicerContext
    ) -> timeline_pb2.GetCustomersResponse:
        self._record("GetCustomers", request)
        if SLOW_ID in request.customer_ids:
            await asyncio.sleep(5)  # well past the 0.3 s deadline of the test's own client
        if BROKEN_ID in request.customer_ids:
            await context.abort(grpc.StatusCode.INTERNAL, "disk on fire at /var/lib/secret")
        known = dict(CUSTOMERS) if request.tenant == TENANT else {}
        # Like the timeline: a merged-away id answers with its survivor.
        known.update({merged: c for c in list(known.values()) for merged in c.merged_ids})
        return timeline_pb2.GetCustomersResponse(
            customers=[
                known.get(customer_id, timeline_pb2.Customer())
                for customer_id in request.customer_ids
            ]
        )

    async def ListInteractions(
        self, request: timeline_pb2.ListInteractionsRequest, context: ServicerContext
    ) -> timeline_pb2.ListInteractionsResponse:
        self._record("ListInteractions", request)
        await self._turn("ListInteractions")
        if request.tenant != TENANT or request.customer_id not in CUSTOMERS:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such customer")
        if request.after == _entries()[-1].cursor:
            # Past the last entry: the end (an export reads every page until here).
            return timeline_pb2.ListInteractionsResponse(has_more=False)
        entries = _entries()[: request.page_size]
        return timeline_pb2.ListInteractionsResponse(
            entries=entries, next_cursor=entries[-1].cursor, has_more=True
        )

    async def GetInteractions(
        self,
        request: timeline_pb2.GetInteractionsRequest,
        context: ServicerContext,  # noqa: ARG002 - the servicer signature
    ) -> timeline_pb2.GetInteractionsResponse:
        self._record("GetInteractions", request)
        wanted = set(request.event_ids) if request.tenant == TENANT else set()
        return timeline_pb2.GetInteractionsResponse(
            entries=[e for e in _entries() if e.interaction.event_id in wanted]
        )

    async def LookupEvents(
        self, request: timeline_pb2.LookupEventsRequest, context: ServicerContext
    ) -> timeline_pb2.LookupEventsResponse:
        await self._serve("LookupEvents", request, context)
        stored = self.stored if request.tenant == TENANT else {}
        return timeline_pb2.LookupEventsResponse(
            found=[
                timeline_pb2.LookupEventsResponse.Found(event_id=id_, customer_id=stored[id_])
                for id_ in request.event_ids
                if id_ in stored
            ]
        )

    async def SearchCustomers(
        self, request: timeline_pb2.SearchCustomersRequest, context: ServicerContext
    ) -> timeline_pb2.SearchCustomersResponse:
        await self._serve("SearchCustomers", request, context)
        known = CUSTOMERS.values() if request.tenant == TENANT else ()
        query = request.query.lower()
        found = [c for c in known if c.display_name.lower().startswith(query)]
        return timeline_pb2.SearchCustomersResponse(customers=found[: request.limit or 20])

    async def GetCases(
        self, request: timeline_pb2.GetCasesRequest, context: ServicerContext
    ) -> timeline_pb2.GetCasesResponse:
        await self._serve("GetCases", request, context)
        known = CASES if request.tenant == TENANT else {}
        return timeline_pb2.GetCasesResponse(
            cases=[known.get(case_id, timeline_pb2.Case()) for case_id in request.case_ids]
        )

    async def ListCases(
        self, request: timeline_pb2.ListCasesRequest, context: ServicerContext
    ) -> timeline_pb2.ListCasesResponse:
        await self._serve("ListCases", request, context)
        known = [c for c in CASES.values() if c.id.startswith("case-")]
        if request.tenant != TENANT:
            known = []
        if request.filter.customer_id:
            known = [c for c in known if c.customer_id == request.filter.customer_id]
        start = int(request.after or 0)
        page = known[start : start + (request.page_size or 50)]
        end = start + len(page)
        self._answering("ListCases")
        return timeline_pb2.ListCasesResponse(
            cases=page, next_cursor=str(end), has_more=end < len(known)
        )

    async def GetMergeHistory(
        self, request: timeline_pb2.GetMergeHistoryRequest, context: ServicerContext
    ) -> timeline_pb2.GetMergeHistoryResponse:
        await self._serve("GetMergeHistory", request, context)
        mine = request.tenant == TENANT and request.customer_id in {"c-0", "c-1"}
        return timeline_pb2.GetMergeHistoryResponse(merges=[MERGE_RECORD] if mine else [])

    async def ListMergeSuggestions(
        self, request: timeline_pb2.ListMergeSuggestionsRequest, context: ServicerContext
    ) -> timeline_pb2.ListMergeSuggestionsResponse:
        await self._serve("ListMergeSuggestions", request, context)
        mine = request.tenant == TENANT and request.customer_id in {"", *SUGGESTION.customer_ids}
        return timeline_pb2.ListMergeSuggestionsResponse(suggestions=[SUGGESTION] if mine else [])


@asynccontextmanager
async def running_fake_timeline() -> AsyncIterator[tuple[FakeTimeline, str]]:
    """Serve a ``FakeTimeline`` over real gRPC on a free local port, health SERVING."""
    async with serving_fake_timeline() as (fake, server):
        yield fake, server.address


class _AnyCaller(ServerInterceptor):
    """The fake timeline takes every call: these tests are about the gateway, and the real
    timeline's callers are tested in tests/integration/test_grpc_callers.py."""

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        return await continuation(handler_call_details)


def _register(fake: FakeTimeline, grpc_server: grpc.aio.Server) -> None:
    timeline_pb2_grpc.add_TimelineServiceServicer_to_server(fake, grpc_server)
    # The timeline serves the read audit next to its reads.
    privacy_pb2_grpc.add_PrivacyServiceServicer_to_server(fake, grpc_server)  # type: ignore[arg-type]


@asynccontextmanager
async def serving_fake_timeline() -> AsyncIterator[tuple[FakeTimeline, GrpcServer]]:
    """Serve a ``FakeTimeline`` as the timeline does: with gRPC health whose readiness
    (``server.set_ready``) tests can flip."""
    fake = FakeTimeline()
    server = GrpcServer(
        host="127.0.0.1",
        port=0,
        register=partial(_register, fake),
        service_names=[TIMELINE_SERVICE_NAME],
        security=ServerSecurity(_AnyCaller()),
    )
    await server.start()
    try:
        yield fake, server
    finally:
        await server.stop(1)


def unused_address() -> str:
    """An address nothing listens on (the OS just handed the port out and took it back)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"127.0.0.1:{port}"


def settings(**overrides: Any) -> GatewaySettings:
    """Settings from defaults and ``overrides`` only, whatever the environment says."""
    return GatewaySettings.model_construct(**overrides)


@pytest.fixture(scope="module")
async def fake_server() -> AsyncIterator[tuple[FakeTimeline, str]]:
    async with running_fake_timeline() as served:
        yield served


@pytest.fixture
def fake(fake_server: tuple[FakeTimeline, str]) -> FakeTimeline:
    fake_server[0].reset()
    return fake_server[0]


@pytest.fixture(scope="module")
async def timeline(fake_server: tuple[FakeTimeline, str]) -> AsyncIterator[TimelineClient]:
    # Generous: the fake answers at once, but two shared cores can stall any call for a while.
    async with TimelineClient(address=fake_server[1], timeout_seconds=15) as client:
        yield client


@pytest.fixture(scope="module")
def schema() -> GatewaySchema:
    return build_schema(settings())


AGENT = Principal(subject="agent-7", tenant=TENANT, roles=frozenset({"agent"}))


async def run(
    schema: GatewaySchema,
    timeline: TimelineClient,
    query: str,
    variables: dict[str, Any] | None = None,
    principal: Principal = AGENT,
) -> ExecutionResult:
    """Execute one operation the way the HTTP view does: fresh context, fresh loaders."""
    context = GatewayContext(timeline=timeline, principal=principal)
    return await schema.execute(query, variable_values=variables, context_value=context)


def data(result: ExecutionResult) -> dict[str, Any]:
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data


def error_codes(result: ExecutionResult) -> list[object]:
    return [(error.extensions or {}).get("code") for error in result.errors or ()]


CUSTOMER_FIELDS = """
    id displayName channels firstContactAt lastContactAt interactionCount mergedIds
    identifiers { kind value network verified }
    interactionsByChannel { channel count }
"""


async def test_customer_fields_come_from_the_timeline(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    result = await run(schema, timeline, f'{{ customer(id: "c-1") {{ {CUSTOMER_FIELDS} }} }}')

    assert data(result)["customer"] == {
        "id": "c-1",
        "displayName": "Yamada Hanako",
        "channels": ["CHAT", "VOICE"],
        "firstContactAt": "2025-03-01T09:00:00+00:00",
        "lastContactAt": "2025-03-02T10:30:00+00:00",
        "interactionCount": 4,
        "mergedIds": ["c-0"],
        "identifiers": [
            # Masked for the agent (gateway.masking); the handle is how the agent finds her.
            {"kind": "PHONE", "value": "+81 90-****-5678", "network": None, "verified": True},
            {"kind": "SOCIAL_HANDLE", "value": "hanako", "network": "x", "verified": False},
        ],
        "interactionsByChannel": [
            {"channel": "CHAT", "count": 2},
            {"channel": "VOICE", "count": 1},
            {"channel": "AGENT_DESK", "count": 1},
        ],
    }
    [request] = fake.calls("GetCustomers")
    assert list(request.customer_ids) == ["c-1"]


async def test_customer_shows_protected_identifiers_with_their_reasons(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    query = '{ customer(id: "c-1") { protectedIdentifiers { kind value network reason } } }'
    result = await run(schema, timeline, query)

    assert data(result)["customer"]["protectedIdentifiers"] == [
        {"kind": "EMAIL", "value": "i****@shop.example", "network": None, "reason": "blocklisted"},
        {"kind": "PHONE", "value": "+81 3-****-5678", "network": None, "reason": "shared"},
    ]


async def test_unknown_customer_id_is_null(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    result = await run(schema, timeline, '{ customer(id: "nobody") { id } }')

    assert data(result) == {"customer": None}


async def test_screen_pop_by_phone_returns_the_customer(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    query = """query ($phone: String!) {
        customerByIdentifier(kind: PHONE, value: $phone) { id displayName }
        again: customer(id: "c-1") { id }
    }"""
    result = await run(schema, timeline, query, {"phone": PHONE_AS_TYPED})

    assert data(result) == {
        "customerByIdentifier": {"id": "c-1", "displayName": "Yamada Hanako"},
        "again": {"id": "c-1"},
    }
    [request] = fake.calls("ResolveIdentifier")
    assert request.identifier.kind == interaction_pb2.IDENTIFIER_KIND_PHONE
    # The gateway passes the number as typed: normalising is the timeline's job.
    assert request.identifier.value == PHONE_AS_TYPED


async def test_screen_pop_for_an_unknown_identifier_is_null(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    query = '{ customerByIdentifier(kind: EMAIL, value: "who@example.com") { id } }'
    result = await run(schema, timeline, query)

    assert data(result) == {"customerByIdentifier": None}
    assert len(fake.calls("ResolveIdentifier")) == 1


async def test_screen_pop_input_the_timeline_rejects_is_bad_user_input(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    query = f'{{ customerByIdentifier(kind: PHONE, value: "{INVALID_PHONE}") {{ id }} }}'
    result = await run(schema, timeline, query)

    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert result.errors is not None
    assert "phone number is not valid" in result.errors[0].message


async def test_screen_pop_by_social_handle_needs_a_network(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    query = '{ customerByIdentifier(kind: SOCIAL_HANDLE, value: "hanako") { id } }'
    result = await run(schema, timeline, query)

    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert fake.calls("ResolveIdentifier") == []


TIMELINE_QUERY = """
query ($first: Int!, $after: String, $channels: [Channel!], $kinds: [Kind!],
       $since: DateTime, $until: DateTime) {
  customer(id: "c-1") {
    timeline(first: $first, after: $after, channels: $channels, kinds: $kinds,
             since: $since, until: $until) {
      edges {
        cursor
        node {
          eventId customerId channel kind direction occurredAt recordedAt conversationRef text
          actor { type id displayName }
          detail {
            __typename
            ... on ChatDetail { sessionId }
            ... on CallDetail { callId fromNumber durationSeconds }
            ... on AgentActionDetail {
              caseId
              action { __typename ... on HandoffAction { toChannel summary openQuestions } }
            }
          }
        }
      }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""


async def test_timeline_maps_entries_cursors_and_page_info(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    result = await run(schema, timeline, TIMELINE_QUERY, {"first": 3})

    connection = data(result)["customer"]["timeline"]
    assert [edge["cursor"] for edge in connection["edges"]] == ["cur-1", "cur-2", "cur-3"]
    assert connection["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": "cur-1",
        "endCursor": "cur-3",
    }
    handoff, call, chat = (edge["node"] for edge in connection["edges"])
    assert handoff == {
        "eventId": "ev-note",
        "customerId": "c-1",
        "channel": "AGENT_DESK",
        "kind": "HANDOFF",
        "direction": "INTERNAL",
        "occurredAt": "2025-03-02T10:30:00+00:00",
        "recordedAt": "2025-03-02T10:31:00+00:00",
        "conversationRef": None,
        "text": None,
        "actor": {"type": "AGENT", "id": "agent-7", "displayName": "Sato"},
        "detail": {
            "__typename": "AgentActionDetail",
            "caseId": "case-1",
            "action": {
                "__typename": "HandoffAction",
                "toChannel": "VOICE",
                "summary": "Wants to cancel; offer a discount",
                "openQuestions": ["Which plan?"],
            },
        },
    }
    assert call["detail"] == {
        "__typename": "CallDetail",
        "callId": "call-42",
        "fromNumber": "+81 90-****-5678",
        "durationSeconds": 312,
    }
    assert call["actor"] == {"type": "CUSTOMER", "id": None, "displayName": None}
    assert (chat["channel"], chat["kind"], chat["text"]) == ("CHAT", "MESSAGE", "解約したいです")
    assert chat["detail"] == {"__typename": "ChatDetail", "sessionId": "chat-session-9"}


async def test_timeline_passes_filters_and_cursor_to_the_timeline(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    variables = {
        "first": 2,
        "after": "cur-0",
        "channels": ["CHAT", "VOICE"],
        "kinds": ["MESSAGE", "CALL_ENDED"],
        "since": "2025-03-01T00:00:00+09:00",
        "until": "2025-03-03T00:00:00+00:00",
    }
    result = await run(schema, timeline, TIMELINE_QUERY, variables)

    assert len(data(result)["customer"]["timeline"]["edges"]) == 2
    [request] = fake.calls("ListInteractions")
    assert request.tenant == TENANT
    assert request.customer_id == "c-1"
    assert request.page_size == 2
    assert request.after == "cur-0"
    assert list(request.channels) == [interaction_pb2.CHANNEL_CHAT, interaction_pb2.CHANNEL_VOICE]
    assert list(request.kinds) == [interaction_pb2.KIND_MESSAGE, interaction_pb2.KIND_CALL_ENDED]
    assert request.since.ToDatetime(tzinfo=UTC) == datetime(2025, 2, 28, 15, tzinfo=UTC)
    assert request.until.ToDatetime(tzinfo=UTC) == datetime(2025, 3, 3, tzinfo=UTC)


async def test_timeline_without_filters_sends_none(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    result = await run(schema, timeline, TIMELINE_QUERY, {"first": 1})

    assert len(data(result)["customer"]["timeline"]["edges"]) == 1
    [request] = fake.calls("ListInteractions")
    assert (request.after, list(request.channels), list(request.kinds)) == ("", [], [])
    assert not request.HasField("since")
    assert not request.HasField("until")


@pytest.mark.parametrize("first", [0, -1, 101, 1000])
async def test_timeline_page_size_outside_1_to_100_is_refused(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline, first: int
) -> None:
    result = await run(schema, timeline, TIMELINE_QUERY, {"first": first})

    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert result.errors is not None
    assert "between 1 and 100" in result.errors[0].message
    assert fake.calls("ListInteractions") == []


async def test_timeline_since_after_until_is_refused(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    variables = {"first": 5, "since": "2025-03-02T00:00:00", "until": "2025-03-01T00:00:00"}
    result = await run(schema, timeline, TIMELINE_QUERY, variables)

    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert fake.calls("ListInteractions") == []


async def test_ten_customers_by_alias_are_loaded_in_one_call(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    ids = [f"c-{number}" for number in range(1, 11)]
    aliases = " ".join(
        f'c{n}: customer(id: "{id_}") {{ id displayName }}' for n, id_ in enumerate(ids)
    )
    result = await run(schema, timeline, f"{{ {aliases} }}")

    assert [customer["id"] for customer in data(result).values()] == ids
    [request] = fake.calls("GetCustomers")
    assert sorted(request.customer_ids) == sorted(ids)


async def test_tenant_sent_to_the_timeline_is_the_principals(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    other = Principal(subject="agent-9", tenant="globex", roles=frozenset({"agent"}))
    query = f"""{{
        customer(id: "c-1") {{ id timeline(first: 1) {{ edges {{ cursor }} }} }}
        customerByIdentifier(kind: PHONE, value: "{PHONE_AS_TYPED}") {{ id }}
    }}"""

    mine = await run(schema, timeline, query)
    theirs = await run(schema, timeline, query, principal=other)

    assert data(mine)["customer"]["id"] == "c-1"
    # Another tenant's agent sees nothing of acme, and no argument could change that.
    assert theirs.data == {"customer": None, "customerByIdentifier": None}
    sent = [
        (method, request.tenant)
        for method, requests in fake.requests.items()
        for request in requests
    ]
    assert sorted(sent) == [
        ("GetCustomers", "acme"),
        ("GetCustomers", "globex"),
        ("ListInteractions", "acme"),
        ("ResolveIdentifier", "acme"),
        ("ResolveIdentifier", "globex"),
    ]


async def test_no_field_takes_a_tenant_argument(schema: GatewaySchema) -> None:
    introspection = await schema.execute("{ __schema { types { fields { args { name } } } } }")

    arguments = {
        argument["name"].lower()
        for type_ in data(introspection)["__schema"]["types"]
        for field_ in type_["fields"] or ()
        for argument in field_["args"]
    }
    assert "first" in arguments
    assert not {name for name in arguments if "tenant" in name}


@pytest.fixture(scope="module")
def strict_schema() -> GatewaySchema:
    return build_schema(settings(max_query_depth=3, max_aliases=2, max_tokens=40))


REFUSED_QUERIES = {
    "too deep": (
        '{ customer(id: "c-1") { timeline { edges { node { actor { id } } } } } }',
        "GRAPHQL_VALIDATION_FAILED",
        "exceeds maximum operation depth of 3",
    ),
    "too many aliases": (
        '{ a: customer(id: "c-1") { id } b: customer(id: "c-2") { id } '
        'c: customer(id: "c-3") { id } }',
        "GRAPHQL_VALIDATION_FAILED",
        "3 aliases found. Allowed: 2",
    ),
    "too many tokens": (
        '{ customer(id: "c-1") { ' + "id " * 50 + "} }",
        "GRAPHQL_PARSE_FAILED",
        "more than 40 tokens",
    ),
    "unknown field": (
        '{ customer(id: "c-1") { shoeSize } }',
        "GRAPHQL_VALIDATION_FAILED",
        "Cannot query field 'shoeSize' on type 'Customer'",
    ),
    "syntax error": ('{ customer(id: "c-1") { id }', "GRAPHQL_PARSE_FAILED", "Syntax Error"),
}


@pytest.mark.parametrize("case", REFUSED_QUERIES)
async def test_refused_query_gets_a_clear_error_and_the_next_query_works(
    strict_schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline, case: str
) -> None:
    query, code, message = REFUSED_QUERIES[case]

    refused = await run(strict_schema, timeline, query)
    normal = await run(strict_schema, timeline, '{ customer(id: "c-1") { id } }')

    assert refused.data is None
    assert error_codes(refused) == [code]
    assert refused.errors is not None
    assert message in refused.errors[0].message
    assert data(normal) == {"customer": {"id": "c-1"}}
    # The refused document never reached the timeline.
    assert len(fake.calls("GetCustomers")) == 1


async def test_timeline_down_is_timeline_unavailable_not_a_crash(schema: GatewaySchema) -> None:
    async with TimelineClient(address=unused_address(), timeout_seconds=2) as down:
        result = await run(
            schema,
            down,
            f"""{{ customer(id: "c-1") {{ id }}
                  customerByIdentifier(kind: PHONE, value: "{PHONE_AS_TYPED}") {{ id }} }}""",
        )

    assert result.data == {"customer": None, "customerByIdentifier": None}
    assert error_codes(result) == ["TIMELINE_UNAVAILABLE", "TIMELINE_UNAVAILABLE"]


async def test_slow_timeline_is_timeline_unavailable(
    schema: GatewaySchema, fake_server: tuple[FakeTimeline, str], fake: FakeTimeline
) -> None:
    async with TimelineClient(address=fake_server[1], timeout_seconds=0.3) as impatient:
        result = await run(schema, impatient, f'{{ customer(id: "{SLOW_ID}") {{ id }} }}')

    assert error_codes(result) == ["TIMELINE_UNAVAILABLE"]


async def test_closed_client_is_timeline_unavailable(schema: GatewaySchema) -> None:
    never_opened = TimelineClient(address=unused_address(), timeout_seconds=1)

    result = await run(schema, never_opened, '{ customer(id: "c-1") { id } }')

    assert error_codes(result) == ["TIMELINE_UNAVAILABLE"]


async def test_internal_timeline_failure_is_masked_when_configured(
    timeline: TimelineClient, fake: FakeTimeline
) -> None:
    masked = build_schema(settings(mask_errors=True))
    query = f'{{ customer(id: "{BROKEN_ID}") {{ id }} }}'

    unmasked_result = await run(build_schema(settings()), timeline, query)
    masked_result = await run(masked, timeline, query)
    client_error = await run(masked, timeline, TIMELINE_QUERY, {"first": 0})

    assert error_codes(unmasked_result) == error_codes(masked_result) == ["INTERNAL_SERVER_ERROR"]
    assert masked_result.errors is not None
    assert masked_result.errors[0].message == "Internal server error."
    assert "secret" not in masked_result.errors[0].message
    # Client-facing errors are never masked: the agent must learn what to change.
    assert error_codes(client_error) == ["BAD_USER_INPUT"]
    assert client_error.errors is not None
    assert "between 1 and 100" in client_error.errors[0].message


async def test_an_unexpected_graphql_error_is_logged_without_the_timelines_details(
    schema: GatewaySchema, timeline: TimelineClient, caplog: pytest.LogCaptureFixture
) -> None:
    # The fake answers INTERNAL with details naming a path: they stand for any text, which
    # the gateway's log must not repeat (tests/unit/test_failure_logs.py has the rest).
    result = await run(schema, timeline, f'{{ customer(id: "{BROKEN_ID}") {{ id }} }}')

    assert error_codes(result) == ["INTERNAL_SERVER_ERROR"]
    assert "/var/lib/secret" not in caplog.text
    assert "TimelineCallFailed" in caplog.text
    assert "AioRpcError" in caplog.text  # its cause, by class


@pytest.mark.parametrize(
    "mapping", PROTO_ENUMS.values(), ids=lambda mapping: mapping.graphql_enum.__name__
)
def test_every_proto_enum_value_has_a_graphql_member(mapping: ProtoEnumMapping[Any, Any]) -> None:
    for name, value in mapping.proto_enum.items():
        member = mapping.from_proto(value)
        if name.endswith("_UNSPECIFIED"):
            assert member is None
        else:
            assert member is not None, f"{name} has no GraphQL member"
            assert mapping.to_proto(member) == value
