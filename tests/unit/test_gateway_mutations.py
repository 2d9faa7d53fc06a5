"""Agent-action mutations: real JetStream publishing, read-your-writes, validation, failures.

The timeline side is played by a real-gRPC fake (``LookupEvents``) and a small recorder that
consumes the published events from the real nats-server and announces them the way the
timeline does (``timeline.updated.<tenant>.<customer>``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path
from typing import Any

import jwt
import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from strawberry.types import ExecutionResult

from gateway.auth import Principal
from gateway.bus import GatewayBus
from gateway.context import GatewayContext
from gateway.schema import GatewaySchema
from gateway.timeline_client import TimelineClient
from tests.action_keys import ActionKeys
from tests.conftest import _quiet_sink
from tests.unit.test_gateway_schema import (
    TENANT,
    FakeTimeline,
    data,
    error_codes,
    fake,
    fake_server,
    schema,
    timeline,
)
from tsunagu.bus import headers
from tsunagu.bus.actor_signature import bound_claims, load_public_keys
from tsunagu.bus.notices import customer_subject, encode_notice
from tsunagu.bus.streams import ensure_streams
from tsunagu.bus.subjects import INTERACTIONS_STREAM
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1.notices_pb2 import TimelineUpdated

__all__ = ["fake", "fake_server", "schema", "timeline"]  # fixtures shared with the schema tests

SUBJECT = f"interactions.{TENANT}.agent_desk"
AGENT_SATO = Principal(
    subject="agent-7", tenant=TENANT, roles=frozenset({"agent"}), display_name="Sato"
)
# Merging, splitting and dismissing suggestions are a supervisor's (gateway.permissions).
SUPERVISOR_ITO = Principal(
    subject="lead-2", tenant=TENANT, roles=frozenset({"agent", "supervisor"}), display_name="Ito"
)


def allowed_to(field: str) -> Principal:
    """Who may perform the mutation ``field`` starts with."""
    merging = field.startswith(("mergeCustomers", "splitMerge", "dismissMergeSuggestion"))
    return SUPERVISOR_ITO if merging else AGENT_SATO


class Recorder:
    """Plays the timeline's consumer: stores what is published, then announces it."""

    def __init__(self, nc: Client, fake: FakeTimeline) -> None:
        self._nc = nc
        self.js = nc.jetstream()
        self._fake = fake
        self.seen: list[tuple[pb.Interaction, dict[str, str]]] = []
        self.paused = False  # store nothing: the wait runs out
        self.silent = False  # store, but never announce: LookupEvents must find it
        self.start = 0  # the stream's last sequence when the test began

    async def on_message(self, msg: Msg) -> None:
        interaction = pb.Interaction.FromString(msg.data)
        self.seen.append((interaction, dict(msg.headers or {})))
        event_id = interaction.event_id
        if self.paused or event_id in self._fake.stored:
            return  # a duplicate is stored (and announced) once, as in the timeline
        customer = interaction.agent_action.customer_id
        self._fake.stored[event_id] = customer
        if self.silent:
            return
        notice = TimelineUpdated(
            tenant=interaction.tenant,
            customer_id=customer,
            event_id=event_id,
            channel=interaction.channel,
            kind=interaction.kind,
            occurred_at=interaction.occurred_at,
            case_id=interaction.agent_action.case_id or "case-1",
        )
        subject = customer_subject(interaction.tenant, customer)
        await self._nc.publish(subject, encode_notice(notice))


@pytest.fixture(scope="module")
async def bus(nats_server: NatsServer, action_keys: ActionKeys) -> AsyncIterator[GatewayBus]:
    async with GatewayBus(
        url=nats_server.url, publish_timeout_seconds=2, signer=action_keys.signer
    ) as opened:
        yield opened


@pytest.fixture(scope="module")
async def timeline_nats(nats_server: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server.url)
    await ensure_streams(nc.jetstream())
    yield nc
    await nc.drain()


@pytest.fixture
async def recorder(timeline_nats: Client, fake: FakeTimeline) -> AsyncIterator[Recorder]:
    recording = Recorder(timeline_nats, fake)
    # Where the stream stood when the test began: what a test published comes after it.
    recording.start = (
        await timeline_nats.jetstream().stream_info(INTERACTIONS_STREAM)
    ).state.last_seq
    subscription = await timeline_nats.subscribe(SUBJECT, cb=recording.on_message)
    await timeline_nats.flush()
    yield recording
    await subscription.unsubscribe()


async def act(
    schema: GatewaySchema,
    timeline: TimelineClient,
    bus: GatewayBus | None,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    principal: Principal = AGENT_SATO,
    wait: float = 2.0,
) -> ExecutionResult:
    context = GatewayContext(
        timeline=timeline, principal=principal, bus=bus, write_wait_seconds=wait
    )
    return await schema.execute(query, variable_values=variables, context_value=context)


async def assert_nothing_published(bus: GatewayBus, recorder: Recorder) -> None:
    """Nothing of the refused action reached the stream.

    A marker published on the same connection afterwards must be the first message on the
    agent-desk subject since the test began, read from the stream itself: no sleep has to
    guess how long a stray publish would take, and no core subscription has to be live.
    """
    marker = pb.Interaction(
        event_id=str(uuid.uuid4()), tenant=TENANT, channel=pb.CHANNEL_AGENT_DESK
    )
    published = await bus.publish(marker, roles=["agent"])
    js = recorder.js
    first = await js.get_msg(
        INTERACTIONS_STREAM, seq=recorder.start + 1, subject=SUBJECT, next=True
    )
    assert first.seq == published.sequence
    assert pb.Interaction.FromString(first.data or b"").event_id == marker.event_id


NOTE = """
mutation ($customerId: ID!, $text: String!, $caseId: ID, $eventId: ID) {
  addNote(customerId: $customerId, text: $text, caseId: $caseId, eventId: $eventId) {
    eventId status
    customer { id displayName }
    case { id status }
  }
}
"""


async def test_note_is_published_as_the_timeline_needs_it_and_answered_stored(
    schema: GatewaySchema,
    timeline: TimelineClient,
    bus: GatewayBus,
    recorder: Recorder,
    action_keys: ActionKeys,
) -> None:
    variables = {"customerId": "c-1", "text": "  Prefers a call after 18:00  ", "caseId": "case-1"}
    result = await act(schema, timeline, bus, NOTE, variables)

    payload = data(result)["addNote"]
    assert payload["status"] == "STORED"
    assert payload["customer"] == {"id": "c-1", "displayName": "Yamada Hanako"}
    assert payload["case"] == {"id": "case-1", "status": "ESCALATED"}
    [(published, sent_headers)] = recorder.seen
    assert published.event_id == payload["eventId"]
    assert uuid.UUID(published.event_id).version == 4
    assert sent_headers[headers.MSG_ID] == f"{TENANT}/{published.event_id}"
    assert published.tenant == TENANT  # from the principal, never the client
    assert published.channel == pb.CHANNEL_AGENT_DESK
    assert published.kind == pb.KIND_NOTE
    assert published.direction == pb.DIRECTION_INTERNAL
    assert published.actor == pb.Actor(type=pb.ACTOR_TYPE_AGENT, id="agent-7", display_name="Sato")
    assert published.content.text == "Prefers a call after 18:00"
    assert published.WhichOneof("detail") == "agent_action"
    assert published.agent_action == pb.AgentActionDetail(
        customer_id="c-1", case_id="case-1", note=pb.NoteAction(text="Prefers a call after 18:00")
    )
    # In UTC: a naive datetime's timestamp() reads it in the machine's zone (9 h off in Tokyo).
    age = time.time() - published.occurred_at.ToDatetime(tzinfo=UTC).timestamp()
    assert 0 <= age < 10
    # It is in the stream, not only on the wire.
    stored = await recorder.js.get_last_msg(INTERACTIONS_STREAM, SUBJECT)
    assert pb.Interaction.FromString(stored.data or b"").event_id == published.event_id
    # Signed by the gateway's key over exactly these bytes, with the agent's roles.
    signed = jwt.decode(
        (stored.headers or {})[headers.SIGNED_ACTOR],
        load_public_keys([action_keys.public])[action_keys.signer.key_id],
        algorithms=["EdDSA"],
        audience="tsunagu:agent-action",
    )
    assert signed["roles"] == ["agent"]
    assert signed["sub"] == "agent-7"
    assert signed["name"] == "Sato"
    assert signed["tenant"] == TENANT
    assert signed["sha256"] == bound_claims(published, stored.data or b"")["sha256"]


MUTATIONS: dict[str, tuple[str, str, Any]] = {
    "handoff": (
        'handoff(customerId: "c-1", toChannel: VOICE, toQueue: "phone", toAgent: "agent-9", '
        'summary: "Wants to cancel", openQuestions: ["Which plan?", "Refund?"])',
        "handoff",
        pb.HandoffAction(
            to_channel=pb.CHANNEL_VOICE,
            to_queue="phone",
            to_agent="agent-9",
            summary="Wants to cancel",
            open_questions=["Which plan?", "Refund?"],
        ),
    ),
    "escalate": (
        'escalate(customerId: "c-1", level: 2, reason: "Charged twice")',
        "escalation",
        pb.EscalationAction(level=2, reason="Charged twice"),
    ),
    "progress": (
        'sendProgressUpdate(customerId: "c-1", message: "Billing is checking")',
        "progress_update",
        pb.ProgressUpdateAction(message="Billing is checking"),
    ),
    "transfer": (
        'transfer(customerId: "c-1", toDepartment: "billing", reason: "Refund")',
        "transfer",
        pb.TransferAction(to_department="billing", reason="Refund"),
    ),
    "resolve": (
        'resolveCase(customerId: "c-1", summary: "Refunded")',
        "resolution",
        pb.ResolutionAction(summary="Refunded"),
    ),
    "tag": (
        'tagCase(customerId: "c-1", tags: ["billing", "refund", "billing"])',
        "tag",
        pb.TagAction(tags=["billing", "refund"]),
    ),
    "csat": (
        'recordCsat(customerId: "c-1", score: 5, comment: "Great")',
        "csat",
        pb.CsatResponse(score=5, comment="Great"),
    ),
    "cancellation": (
        'requestCancellation(customerId: "c-1", reason: SURPLUS_STOCK)',
        "cancellation_request",
        pb.CancellationRequestAction(reason=pb.CANCELLATION_REASON_SURPLUS_STOCK),
    ),
    "cancellation other": (
        'requestCancellation(customerId: "c-1", reason: OTHER, reasonDetail: "Moving abroad")',
        "cancellation_request",
        pb.CancellationRequestAction(
            reason=pb.CANCELLATION_REASON_OTHER, reason_detail="Moving abroad"
        ),
    ),
    "outcome": (
        'recordCancellationOutcome(customerId: "c-1", outcome: RETAINED, note: "Skips a month")',
        "cancellation_outcome",
        pb.CancellationOutcomeAction(
            outcome=pb.CANCELLATION_OUTCOME_RETAINED, note="Skips a month"
        ),
    ),
    "follow-up": (
        'completeFollowUp(customerId: "c-1", taskId: "task-late", note: "Called back")',
        "complete_follow_up",
        pb.CompleteFollowUpAction(task_id="task-late", note="Called back"),
    ),
    "merge": (
        'mergeCustomers(customerIds: ["c-1", "c-2"], reason: "Same person", suggestionId: "sug-1")',
        "merge_customers",
        pb.MergeCustomersAction(
            customer_ids=["c-1", "c-2"], reason="Same person", suggestion_id="sug-1"
        ),
    ),
    "split": (
        'splitMerge(customerId: "c-1", mergeId: "merge-1", reason: "Sisters")',
        "split_merge",
        pb.SplitMergeAction(merge_id="merge-1", reason="Sisters"),
    ),
    "dismiss": (
        'dismissMergeSuggestion(customerId: "c-1", suggestionId: "sug-1", reason: "Different")',
        "dismiss_merge_suggestion",
        pb.DismissMergeSuggestionAction(suggestion_id="sug-1", reason="Different"),
    ),
}


@pytest.mark.parametrize("name", MUTATIONS)
async def test_every_agent_action_becomes_its_event(
    schema: GatewaySchema, timeline: TimelineClient, bus: GatewayBus, recorder: Recorder, name: str
) -> None:
    field, oneof, expected = MUTATIONS[name]

    result = await act(
        schema,
        timeline,
        bus,
        f"mutation {{ {field} {{ eventId status }} }}",
        principal=allowed_to(field),
    )

    [payload] = data(result).values()
    assert payload["status"] == "STORED"
    [(published, _)] = recorder.seen
    assert published.event_id == payload["eventId"]
    action = published.agent_action
    assert (action.customer_id, action.WhichOneof("action")) == ("c-1", oneof)
    assert getattr(action, oneof) == expected
    # Only what is said to the customer goes out; everything else is internal.
    outbound = name == "progress"
    assert published.direction == (pb.DIRECTION_OUTBOUND if outbound else pb.DIRECTION_INTERNAL)
    assert published.kind != pb.KIND_UNSPECIFIED


async def test_a_retried_mutation_with_the_same_event_id_is_one_event(
    schema: GatewaySchema,
    timeline: TimelineClient,
    bus: GatewayBus,
    recorder: Recorder,
    timeline_nats: Client,
) -> None:
    key = str(uuid.uuid4()).upper()  # any case; stored lower-case like ingestion does
    variables = {"customerId": "c-1", "text": "Call back", "eventId": key}
    js = timeline_nats.jetstream()

    first = await act(schema, timeline, bus, NOTE, variables)
    before = (await js.stream_info(INTERACTIONS_STREAM)).state.messages
    again = await act(schema, timeline, bus, NOTE, variables)
    after = (await js.stream_info(INTERACTIONS_STREAM)).state.messages

    assert data(first)["addNote"]["eventId"] == key.lower()
    assert data(again)["addNote"]["eventId"] == key.lower()
    # The retry finds the event stored (LookupEvents), though it is never announced twice.
    assert data(again)["addNote"]["status"] == "STORED"
    assert after == before  # the stream de-duplicated the retry by Nats-Msg-Id


async def test_when_the_wait_runs_out_the_answer_is_accepted_with_the_event_id(
    schema: GatewaySchema, timeline: TimelineClient, bus: GatewayBus, recorder: Recorder
) -> None:
    recorder.paused = True

    started = time.monotonic()
    result = await act(schema, timeline, bus, NOTE, {"customerId": "c-1", "text": "x"}, wait=0.3)
    elapsed = time.monotonic() - started

    payload = data(result)["addNote"]
    assert payload["status"] == "ACCEPTED"
    assert (payload["customer"], payload["case"]) == (None, None)
    assert payload["eventId"] == recorder.seen[0][0].event_id
    assert 0.3 <= elapsed < 2


async def test_a_missed_notice_is_caught_by_the_lookup_when_the_wait_ends(
    schema: GatewaySchema,
    timeline: TimelineClient,
    bus: GatewayBus,
    recorder: Recorder,
    fake: FakeTimeline,
) -> None:
    recorder.silent = True

    result = await act(schema, timeline, bus, NOTE, {"customerId": "c-1", "text": "x"}, wait=0.2)

    assert data(result)["addNote"]["status"] == "STORED"
    [lookup] = fake.calls("LookupEvents")
    assert (lookup.tenant, list(lookup.event_ids)) == (TENANT, [recorder.seen[0][0].event_id])


async def test_the_notice_wakes_the_mutation_long_before_the_wait_ends(
    schema: GatewaySchema, timeline: TimelineClient, bus: GatewayBus, recorder: Recorder
) -> None:
    started = time.monotonic()
    result = await act(schema, timeline, bus, NOTE, {"customerId": "c-1", "text": "x"}, wait=10)

    assert data(result)["addNote"]["status"] == "STORED"
    assert time.monotonic() - started < 2


INVALID = {
    "blank note": ('addNote(customerId: "c-1", text: "   ")', "`text` must not be empty"),
    "huge note": ('addNote(customerId: "c-1", text: "' + "x" * 10_001 + '")', "at most 10000"),
    "control characters": ('addNote(customerId: "c-1", text: "a\\u0000b")', "control characters"),
    "csat too high": ('recordCsat(customerId: "c-1", score: 6)', "between 1 and 5"),
    "csat zero": ('recordCsat(customerId: "c-1", score: 0)', "between 1 and 5"),
    "other without words": (
        'requestCancellation(customerId: "c-1", reason: OTHER)',
        "`reasonDetail` must not be empty",
    ),
    "handoff nowhere": ('handoff(customerId: "c-1", summary: "s")', "needs `toChannel`"),
    "handoff to the desk": (
        'handoff(customerId: "c-1", toChannel: AGENT_DESK, summary: "s")',
        "customer-facing channel",
    ),
    "too many tags": (
        'tagCase(customerId: "c-1", tags: [' + ", ".join(f'"t{n}"' for n in range(21)) + "])",
        "at most 20 tags",
    ),
    "no tags": ('tagCase(customerId: "c-1", tags: [])', "at least one tag"),
    "level zero": ('escalate(customerId: "c-1", level: 0, reason: "r")', "between 1 and 5"),
    "merge one": ('mergeCustomers(customerIds: ["c-1", "c-1"], reason: "r")', "two different"),
    "merge the same person": (
        'mergeCustomers(customerIds: ["c-1", "c-0"], reason: "r")',
        "already are one customer",
    ),
    "bad event id": (
        'addNote(customerId: "c-1", text: "x", eventId: "retry-1")',
        "must be a UUID (hyphenated) or a ULID",
    ),
    "blank customer": ('addNote(customerId: "", text: "x")', "`customerId` must not be empty"),
}


@pytest.mark.parametrize("name", INVALID)
async def test_invalid_input_is_bad_user_input_and_nothing_is_published(
    schema: GatewaySchema, timeline: TimelineClient, bus: GatewayBus, recorder: Recorder, name: str
) -> None:
    field, message = INVALID[name]

    result = await act(
        schema, timeline, bus, f"mutation {{ {field} {{ eventId }} }}", principal=allowed_to(field)
    )

    assert error_codes(result) == ["BAD_USER_INPUT"], result.errors
    assert result.errors is not None
    assert message in result.errors[0].message
    await assert_nothing_published(bus, recorder)


async def test_an_action_about_an_unknown_customer_is_not_found_and_not_published(
    schema: GatewaySchema, timeline: TimelineClient, bus: GatewayBus, recorder: Recorder
) -> None:
    result = await act(schema, timeline, bus, NOTE, {"customerId": "nobody", "text": "x"})

    assert error_codes(result) == ["NOT_FOUND"]
    await assert_nothing_published(bus, recorder)


@pytest.mark.parametrize("case_id", ["case-2", "case-nobody"])
async def test_an_action_on_another_customers_or_an_unknown_case_is_not_found_at_once(
    schema: GatewaySchema,
    timeline: TimelineClient,
    bus: GatewayBus,
    recorder: Recorder,
    case_id: str,
) -> None:
    # case-2 is c-2's: accepted, the timeline would dead-letter it after the write wait.
    variables = {"customerId": "c-1", "text": "x", "caseId": case_id}

    result = await act(schema, timeline, bus, NOTE, variables, wait=30)

    assert error_codes(result) == ["NOT_FOUND"]
    await assert_nothing_published(bus, recorder)


@pytest.mark.parametrize(
    "field",
    [
        'splitMerge(customerId: "c-1", mergeId: "merge-nobody", reason: "r")',
        'dismissMergeSuggestion(customerId: "c-1", suggestionId: "sug-nobody", reason: "r")',
        'mergeCustomers(customerIds: ["c-1", "c-2"], reason: "r", suggestionId: "sug-nobody")',
    ],
)
async def test_a_merge_or_suggestion_the_customer_does_not_have_is_not_found_at_once(
    schema: GatewaySchema, timeline: TimelineClient, bus: GatewayBus, recorder: Recorder, field: str
) -> None:
    result = await act(
        schema, timeline, bus, f"mutation {{ {field} {{ eventId }} }}", principal=SUPERVISOR_ITO
    )

    assert error_codes(result) == ["NOT_FOUND"]
    await assert_nothing_published(bus, recorder)


async def test_a_merged_customer_id_acts_on_the_survivor(
    schema: GatewaySchema, timeline: TimelineClient, bus: GatewayBus, recorder: Recorder
) -> None:
    result = await act(schema, timeline, bus, NOTE, {"customerId": "c-0", "text": "x"})

    assert data(result)["addNote"]["customer"]["id"] == "c-1"
    assert recorder.seen[0][0].agent_action.customer_id == "c-1"


async def test_readers_cannot_act(
    schema: GatewaySchema, timeline: TimelineClient, bus: GatewayBus, recorder: Recorder
) -> None:
    analyst = Principal(subject="ana", tenant=TENANT, roles=frozenset({"analyst"}))

    result = await act(
        schema, timeline, bus, NOTE, {"customerId": "c-1", "text": "x"}, principal=analyst
    )

    assert error_codes(result) == ["FORBIDDEN"]
    await assert_nothing_published(bus, recorder)


async def test_without_a_bus_an_action_is_bus_unavailable(
    schema: GatewaySchema, timeline: TimelineClient
) -> None:
    result = await act(schema, timeline, None, NOTE, {"customerId": "c-1", "text": "x"})

    assert error_codes(result) == ["BUS_UNAVAILABLE"]


async def test_publish_path_down_is_bus_unavailable_quickly_and_never_a_hang(
    schema: GatewaySchema,
    timeline: TimelineClient,
    fake: FakeTimeline,
    tmp_path: Path,
    action_keys: ActionKeys,
) -> None:
    # A NATS without the INTERACTIONS stream: nobody acknowledges the event.
    async with (
        NatsServer(tmp_path / "nats", sink=_quiet_sink) as lonely,
        GatewayBus(
            url=lonely.url, publish_timeout_seconds=1, signer=action_keys.signer
        ) as no_stream,
    ):
        started = time.monotonic()
        no_ack = await act(schema, timeline, no_stream, NOTE, {"customerId": "c-1", "text": "x"})
        no_ack_seconds = time.monotonic() - started
        await lonely.stop()  # and now the server is gone
        started = time.monotonic()
        gone = await act(schema, timeline, no_stream, NOTE, {"customerId": "c-1", "text": "x"})
        gone_seconds = time.monotonic() - started

    for result in (no_ack, gone):
        assert error_codes(result) == ["BUS_UNAVAILABLE"]
        assert result.errors is not None
        assert "retry with the same eventId" in result.errors[0].message
    assert no_ack_seconds < 3
    assert gone_seconds < 3
    assert fake.calls("LookupEvents") == []
