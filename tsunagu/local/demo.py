"""The demo customer: a web form, a chat that gives her number, a call, an email to cancel."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from tsunagu.grpc_channels import open_channel
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc, interaction_pb2, timeline_pb2, timeline_pb2_grpc

TENANT = "demo"
PHONE = "090-1234-5678"  # as she types it: a Japanese mobile in national format
EMAIL = "Hanako.Sato@example.jp"
_NAMESPACE = uuid.UUID("8f1d2c4b-1e7a-4c1b-9d55-0f6b5e2f7a30")

pb = interaction_pb2


def _event_id(name: str) -> str:
    # Stable ids: running the demo twice submits the same events, which the stream de-duplicates.
    return str(uuid.uuid5(_NAMESPACE, name))


@dataclass(frozen=True, slots=True)
class DemoEvent:
    channel: str
    interaction: pb.Interaction


_CHANNELS = {
    "web": pb.CHANNEL_WEB,
    "chat": pb.CHANNEL_CHAT,
    "voice": pb.CHANNEL_VOICE,
    "email": pb.CHANNEL_EMAIL,
}
_HANAKO = pb.Actor(type=pb.ACTOR_TYPE_CUSTOMER, display_name="Sato Hanako")


def _event(
    name: str,
    channel: str,
    kind: pb.Kind.ValueType,
    at: datetime,
    *,
    actor: pb.Actor = _HANAKO,
    direction: pb.Direction.ValueType = pb.DIRECTION_INBOUND,
    **detail: object,
) -> DemoEvent:
    """One event of the scenario: `detail` holds the channel's detail message and identifiers."""
    interaction = pb.Interaction(
        event_id=_event_id(name),
        tenant=TENANT,
        channel=_CHANNELS[channel],
        kind=kind,
        direction=direction,
        actor=actor,
        **detail,  # type: ignore[arg-type]
    )
    interaction.occurred_at.FromDatetime(at)
    return DemoEvent(channel, interaction)


def _chat(day1: datetime) -> list[DemoEvent]:
    lines = [
        ("customer", "Hello, my subscription delivery is three days late."),
        ("agent", "I'm sorry about that. May I have your phone number to look up the order?"),
        ("customer", f"It's {PHONE}. My email is {EMAIL.lower()} if that helps."),
        ("agent", "Thank you. I'll ask the warehouse and call you back."),
    ]
    agent = pb.Actor(type=pb.ACTOR_TYPE_AGENT, id="agent-tanaka", display_name="Tanaka")
    events = []
    for i, (who, text) in enumerate(lines):
        # She chats signed in (her account page): the shop vouches for the session and for
        # her account's number and address, so the chat may link her earlier web form.
        identifiers = [
            pb.Identifier(kind=pb.IDENTIFIER_KIND_CHAT_VISITOR, value="visitor-7f3a", verified=True)
        ]
        if i == 2:
            identifiers += [
                pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=PHONE, verified=True),
                pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=EMAIL, verified=True),
            ]
        customer = who == "customer"
        events.append(
            _event(
                f"chat-{i}",
                "chat",
                pb.KIND_MESSAGE,
                day1 + timedelta(minutes=i),
                actor=_HANAKO if customer else agent,
                direction=pb.DIRECTION_INBOUND if customer else pb.DIRECTION_OUTBOUND,
                identifiers=identifiers,
                content=pb.Content(text=text, language="en"),
                chat=pb.ChatDetail(
                    session_id="chat-session-1029", page_url="https://shop.example.jp/mypage"
                ),
            )
        )
    return events


def scenario(now: datetime | None = None) -> list[DemoEvent]:
    """The events of the demo, oldest first, ending a little before `now`."""
    now = now or datetime.now(UTC)
    day1 = (now - timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    form = pb.WebFormDetail(
        form_id="subscription-inquiry",
        page_url="https://shop.example.jp/contact",
        fields=[
            pb.FormField(name="name", value="Sato Hanako"),
            pb.FormField(name="email", value=EMAIL),
            pb.FormField(name="message", value="When does my next delivery ship?"),
        ],
    )
    call_at = day1 + timedelta(minutes=14)
    call = pb.CallDetail(
        call_id="call-88412",
        leg_id="leg-1",
        from_number=PHONE,
        to_number="0120-123-456",
        queue="subscriptions",
    )
    ended_call = pb.CallDetail()
    ended_call.CopyFrom(call)
    ended_call.duration_seconds = 360
    ended_call.end_reason = "completed"
    ended_call.transcript = (
        "Customer asked again about the late delivery. Agent confirmed it ships tomorrow "
        "with express shipping at no charge."
    )
    mail = pb.EmailDetail(
        message_id="<cancel-5521@mail.example.jp>",
        from_address=EMAIL,
        to_addresses=["support@shop.example.jp"],
        subject="Cancel my subscription",
        html_body=(
            "<html><body><p>Hello,</p><p>The delivery arrived, thank you. "
            "I still have a lot of stock left, so I would like to "
            "<b>cancel my subscription</b>.</p><p>Sato Hanako</p></body></html>"
        ),
    )
    customer = pb.Actor(type=pb.ACTOR_TYPE_CUSTOMER)
    return [
        _event("web-form", "web", pb.KIND_FORM_SUBMISSION, day1 - timedelta(days=6), web_form=form),
        *_chat(day1),
        _event("call-started", "voice", pb.KIND_CALL_STARTED, call_at, actor=customer, call=call),
        _event(
            "call-ended",
            "voice",
            pb.KIND_CALL_ENDED,
            call_at + timedelta(minutes=6),
            actor=customer,
            call=ended_call,
        ),
        _event(
            "email-cancel",
            "email",
            pb.KIND_EMAIL,
            # Today at 08:00 UTC, unless that is still ahead (ingestion refuses the future).
            min(day1 + timedelta(days=1, hours=-2), now - timedelta(minutes=1)),
            email=mail,
        ),
    ]


async def submit_demo(
    ingest_addresses: Mapping[str, str], tokens: Mapping[str, str]
) -> list[ingest_pb2.SubmitResult]:
    """Submit the scenario through the real gRPC API, each event to its channel's service.

    Args:
        ingest_addresses: Channel → ``host:port`` of its ingestion service.
        tokens: Channel → the bearer token of that channel's adapter.
    """
    results = []
    channels: dict[str, grpc.aio.Channel] = {}
    try:
        for event in scenario():
            if event.channel not in channels:
                channels[event.channel] = open_channel(
                    ingest_addresses[event.channel], token=tokens[event.channel]
                )
            stub = ingest_pb2_grpc.IngestServiceStub(channels[event.channel])
            response = await stub.Submit(
                ingest_pb2.SubmitRequest(interaction=event.interaction), timeout=10
            )
            results.append(response.result)
    finally:
        for channel in channels.values():
            await channel.close(grace=None)
    return results


SCREEN_POP_QUERY = """\
query ScreenPop {
  customerByIdentifier(kind: PHONE, value: "090-1234-5678") {
    id
    displayName
    channels
    interactionCount
    mergedIds
    timeline(first: 20) {
      edges {
        node { occurredAt channel kind direction text actor { type displayName } }
      }
    }
  }
}"""


async def find_demo_customer(
    timeline_address: str, *, token: str, within_seconds: float = 10
) -> str | None:
    """The demo customer's id, once the timeline has stored her (screen-pop by her number).

    Args:
        timeline_address: ``host:port`` of the timeline.
        token: A service identity's bearer token (the timeline serves no one else).
        within_seconds: How long to wait for her.

    Returns:
        The id, or ``None`` when the timeline does not know her within ``within_seconds``.
    """
    request = timeline_pb2.ResolveIdentifierRequest(
        tenant=TENANT, identifier=pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=PHONE)
    )
    async with open_channel(timeline_address, token=token) as channel:
        stub = timeline_pb2_grpc.TimelineServiceStub(channel)
        until = asyncio.get_running_loop().time() + within_seconds
        return await resolve_when_stored(stub, request, until=until)


# Not stored yet, or the timeline is busy storing (a deadline exceeded under the demo's load).
_NOT_YET = {
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}


async def resolve_when_stored(
    stub: timeline_pb2_grpc.TimelineServiceAsyncStub,
    request: timeline_pb2.ResolveIdentifierRequest,
    *,
    until: float,
) -> str | None:
    """The customer an identifier resolves to, asking until the timeline has stored her.

    Args:
        stub: The timeline's client.
        request: Tenant and identifier.
        until: The event loop's time to give up at.

    Returns:
        Her id, or ``None`` when the timeline does not know the identifier by ``until``.
    """
    while asyncio.get_running_loop().time() < until:
        try:
            response = await stub.ResolveIdentifier(request, timeout=2)
        except grpc.aio.AioRpcError as error:
            if error.code() not in _NOT_YET:
                raise
        else:
            return response.customer.id
        await asyncio.sleep(0.2)
    return None


def subscription_example(customer_id: str) -> str:
    """A subscription an agent can paste into GraphiQL to watch the customer live."""
    return f"""\
subscription WatchCustomer {{
  timelineUpdated(customerId: "{customer_id}") {{
    eventId kind channel caseId
    entry {{ occurredAt text actor {{ type displayName }} }}
  }}
}}"""


def mutation_example(customer_id: str) -> str:
    """A mutation an agent can paste into GraphiQL: the chat agent hands off to the phone."""
    return f"""\
mutation HandOffToPhone {{
  handoff(
    customerId: "{customer_id}"
    toChannel: VOICE
    summary: "Delivery was late; she now wants to cancel (surplus stock)"
    openQuestions: ["Offer to skip a month instead?"]
  ) {{
    eventId status
    customer {{ id lastAgentRemark {{ kind text openQuestions }} }}
  }}
}}"""


def graphiql_headers(credentials_file: Path) -> str:
    """How to use the local tokens: where they are, and a GraphiQL headers snippet."""
    tokens = json.loads(credentials_file.read_text(encoding="utf-8"))["graphql"]
    headers = json.dumps({"Authorization": tokens["agent"]})
    return (
        f'  Tokens for tenant {TENANT!r}, one per role: {credentials_file} (section "graphql").\n'
        "  Paste this into GraphiQL's Headers tab (the agent's token):\n\n"
        f"    {headers}\n\n"
        "  More tokens:\n"
        "    .venv/bin/python -m tsunagu.local token --tenant demo --roles agent,supervisor\n"
    )


def adapter_usage(credentials_file: Path) -> str:
    """How an adapter authenticates locally: where the tokens are, and one as a header."""
    adapters = json.loads(credentials_file.read_text(encoding="utf-8"))["adapters"]
    chat = adapters.get("chat") or next(iter(adapters.values()))
    return (
        f"  gRPC adapters, one bearer token per ingest channel: {credentials_file} (section\n"
        '  "adapters"). Send it as metadata on every call, e.g. for chat:\n\n'
        f"    authorization: {chat['metadata']['authorization']}\n\n"
        "  Another tenant's or channel's adapter (prints the token and the server's credential):\n"
        "    .venv/bin/python -m tsunagu.local adapter-token --tenant acme --channel chat\n"
    )
