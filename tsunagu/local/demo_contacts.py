"""A few hundred generated demo contacts: customers, channels, agents, queues and outcomes.

Seeded, so every `make run` generates the same stories with the same event ids (a second run
stores nothing new). Customers write in Japanese or English about ten topics over the last
eight weeks (late deliveries spike in the last one); agents answer on the channel, then act
through the gateway as themselves: resolve with a resolution note, escalate, transfer, record
CSAT and cancellation requests with their outcome.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tsunagu.grpc_channels import open_channel
from tsunagu.local import demo_phrases as phrases
from tsunagu.local import graphql
from tsunagu.local.demo import TENANT, resolve_when_stored
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc, interaction_pb2, timeline_pb2, timeline_pb2_grpc

pb = interaction_pb2

STORIES = 220
SEED = 2026
_NAMESPACE = uuid.UUID("0b7e4f7e-5a43-4c4e-8d0c-2f0d6b1e9a11")
_JST = timedelta(hours=9)
# Look-ups of customers at a time: the timeline is still storing the contacts meanwhile.
_LOOKUPS = 8
# SubmitBatch size: well under the ingest service's per-call bounds.
_BATCH = 200
# Late deliveries are this many times as frequent in the last week: the trend shows a spike.
_SPIKE = 4
# Contacts end this long before now, so that agents' replies (up to 4 h later) are not ahead.
_LATEST = timedelta(hours=5)


@dataclass(frozen=True, slots=True)
class Agent:
    """A demo agent: the token's subject and display name, and the queue they work."""

    id: str
    name: str
    queue: str


AGENTS = (
    Agent("agent-tanaka", "Tanaka", "subscriptions"),
    Agent("agent-suzuki", "Suzuki", "subscriptions"),
    Agent("agent-ito", "Ito", "billing"),
    Agent("agent-watanabe", "Watanabe", "billing"),
    Agent("agent-takahashi", "Takahashi", "logistics"),
    Agent("agent-okada", "Okada", "technical"),
    Agent("agent-miller", "Miller", "technical"),
    Agent("agent-mori", "Mori", "product-care"),
    Agent("agent-kato", "Kato", "logistics"),
    Agent("agent-endo", "Endo", "product-care"),
    Agent("agent-nakano", "Nakano", "subscriptions"),
    Agent("agent-brown", "Brown", "billing"),
    Agent("agent-sato", "Sato", "technical"),
    Agent("agent-hayashi", "Hayashi", "logistics"),
)


@dataclass(frozen=True, slots=True)
class Action:
    """An agent action for the gateway: the mutation's name and its variables."""

    mutation: str
    variables: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Story:
    """One customer's contact about one topic, on one or more channels, and what agents did.

    Attributes:
        customer: Her display name.
        identifier: How the timeline finds her afterwards (her phone, e-mail or handle).
        topic: What she wrote about (a key of `demo_phrases.TOPICS`).
        agent: Who handled it.
        events: (ingest channel, interaction), oldest first.
        actions: Agent actions after the contacts, in order.
    """

    customer: str
    identifier: pb.Identifier
    topic: str
    agent: Agent
    events: tuple[tuple[str, pb.Interaction], ...]
    actions: tuple[Action, ...] = field(default=())


def _event_id(*parts: object) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(map(str, parts))))


def _business_hours(rng: random.Random, now: datetime, *, recent: bool) -> datetime:
    days = rng.uniform(0.3, 7) if recent else rng.uniform(0.3, 56)
    local = (now + _JST - timedelta(days=days)).replace(
        hour=rng.randrange(9, 18), minute=rng.randrange(60), second=0, microsecond=0
    )
    return min(local - _JST, now - _LATEST)


def _text(rng: random.Random, topic: str, japanese: bool) -> str:
    parts = phrases.TOPICS[topic]
    body = rng.choice(parts.ja if japanese else parts.en).format(days=rng.randrange(2, 8))
    if rng.random() < 0.3:
        order = f"A-{rng.randrange(10**6, 10**7)}"
        body += f" 注文番号 {order}" if japanese else f" Order #{order}."
    if japanese and not body.endswith(("。", "？", "?")):
        body += "。"
    greetings = phrases.GREETINGS_JA if japanese else phrases.GREETINGS_EN
    closings = phrases.CLOSINGS_JA if japanese else phrases.CLOSINGS_EN
    return f"{rng.choice(greetings)}{body}{rng.choice(closings)}"


@dataclass(frozen=True, slots=True)
class _Customer:
    name: str
    phone: str
    email: str
    handle: str
    japanese: bool


def _customer(rng: random.Random, index: int) -> _Customer:
    japanese = rng.random() < 0.6
    name = (
        f"{rng.choice(phrases.FAMILY_NAMES)} {rng.choice(phrases.GIVEN_NAMES)}"
        if japanese
        else rng.choice(phrases.EN_NAMES)
    )
    # 070 numbers in a block of their own: never the demo customer's 090-1234-5678.
    phone = f"070-{5000 + index // 10_000:04d}-{index % 10_000:04d}"
    return _Customer(name, phone, f"customer{index:04d}@example.jp", f"demo_{index:04d}", japanese)


def _contact(
    rng: random.Random, *, who: _Customer, channel: str, at: datetime, text: str, key: str
) -> list[tuple[str, pb.Interaction]]:
    """One inbound contact on `channel`, with the identifiers that channel carries."""
    inbound = pb.Interaction(
        event_id=_event_id(key, "in"),
        tenant=TENANT,
        direction=pb.DIRECTION_INBOUND,
        actor=pb.Actor(type=pb.ACTOR_TYPE_CUSTOMER, display_name=who.name),
        content=pb.Content(text=text, language="ja" if who.japanese else "en"),
    )
    if channel == "chat":
        inbound.channel, inbound.kind = pb.CHANNEL_CHAT, pb.KIND_MESSAGE
        inbound.chat.session_id = f"chat-{key}"
        inbound.identifiers.append(
            pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=who.email, verified=True)
        )
    elif channel == "email":
        inbound.channel, inbound.kind = pb.CHANNEL_EMAIL, pb.KIND_EMAIL
        inbound.email.message_id = f"<{key}@mail.example.jp>"
        inbound.email.from_address = who.email
        inbound.email.to_addresses.append("support@shop.example.jp")
        inbound.email.subject = text[:30]
        inbound.email.text_body = text
    elif channel == "voice":
        inbound.channel, inbound.kind = pb.CHANNEL_VOICE, pb.KIND_CALL_ENDED
        inbound.actor.CopyFrom(pb.Actor(type=pb.ACTOR_TYPE_CUSTOMER))
        inbound.call.call_id = f"call-{key}"
        inbound.call.leg_id = "leg-1"
        inbound.call.from_number = who.phone
        inbound.call.to_number = "0120-123-456"
        inbound.call.duration_seconds = rng.randrange(90, 900)
        inbound.call.end_reason = "completed"
        inbound.call.transcript = text
    elif channel == "sms":
        inbound.channel, inbound.kind = pb.CHANNEL_SMS, pb.KIND_MESSAGE
        inbound.sms.from_number = who.phone
        inbound.sms.to_number = "0120-123-456"
    else:
        inbound.channel, inbound.kind = pb.CHANNEL_SOCIAL, pb.KIND_MESSAGE
        inbound.social.network = "x"
        inbound.social.handle = who.handle
        inbound.social.thread_id = f"thread-{key}"
    inbound.occurred_at.FromDatetime(at)
    events = [(channel, inbound)]
    if channel != "voice":  # on a call the agent answers live
        events.append((channel, _reply(rng, inbound, who=who, key=key)))
    return events


def _reply(
    rng: random.Random, inbound: pb.Interaction, *, who: _Customer, key: str
) -> pb.Interaction:
    reply = pb.Interaction()
    reply.CopyFrom(inbound)
    reply.event_id = _event_id(key, "reply")
    reply.direction = pb.DIRECTION_OUTBOUND
    # The reply keeps the customer's identifiers: that is how it lands on their case and
    # stops the response clock (an outbound event without identifiers has no customer).
    reply.actor.CopyFrom(pb.Actor(type=pb.ACTOR_TYPE_AGENT, display_name="Support"))
    reply.content.text = rng.choice(phrases.REPLIES_JA if who.japanese else phrases.REPLIES_EN)
    detail = reply.WhichOneof("detail")
    if detail == "email":
        reply.email.message_id = f"<{key}-reply@shop.example.jp>"
        reply.email.in_reply_to = inbound.email.message_id
        reply.email.from_address = "support@shop.example.jp"
        reply.email.to_addresses[:] = [who.email]
        reply.email.text_body = reply.content.text
    elif detail == "sms":
        reply.sms.from_number, reply.sms.to_number = inbound.sms.to_number, who.phone
    # First response from minutes to most of a working day.
    answered = inbound.occurred_at.ToDatetime(UTC) + timedelta(minutes=rng.choice((3, 12, 45, 240)))
    reply.occurred_at.FromDatetime(answered)
    return reply


_CANCEL_REASONS = (
    "CONDITION_IMPROVED",
    "SURPLUS_STOCK",
    "NO_EFFECT",
    "SWITCHING_TO_COMPETITOR",
    "FINANCIAL_BURDEN",
)


def _actions(rng: random.Random, story_key: str, topic: str, text: str) -> list[Action]:
    parts = phrases.TOPICS[topic]
    actions: list[Action] = []
    cancelling = topic == "cancellation" or (topic == "side_effects" and rng.random() < 0.3)
    if cancelling:
        reason = "HEALTH" if topic == "side_effects" else _cancel_reason(text)
        actions.append(Action("requestCancellation", {"reason": reason}))
        outcome = rng.choices(("RETAINED", "CANCELLED", "PENDING"), weights=(4, 5, 1))[0]
        note = {"RETAINED": "Offered a skip month; she stays", "CANCELLED": "Cancelled as asked"}
        actions.append(
            Action("recordCancellationOutcome", {"outcome": outcome, "note": note.get(outcome)})
        )
    if rng.random() < 0.1:
        actions.append(Action("escalate", {"level": rng.choice((1, 2)), "reason": "Repeat issue"}))
    if rng.random() < 0.06:
        actions.append(
            Action("transfer", {"toDepartment": "billing", "reason": "Needs a billing check"})
        )
    if rng.random() < 0.85:
        actions.append(Action("resolveCase", {"summary": parts.resolution}))
        if rng.random() < 0.55:
            score = rng.choices(range(1, 6), weights=[w + 0.01 for w in parts.csat])[0]
            comment = rng.choice((None, "Quick and kind", "Took too long", "助かりました"))
            actions.append(Action("recordCsat", {"score": score, "comment": comment}))
    return [
        Action(a.mutation, {**a.variables, "eventId": _event_id(story_key, "action", i)})
        for i, a in enumerate(actions)
    ]


def _cancel_reason(text: str) -> str:
    for index, key in enumerate(("", "在庫", "効果", "他社", "経済")):
        if key and key in text:
            return _CANCEL_REASONS[index]
    for index, key in enumerate(("", "too much", "isn't working", "another brand", "Money")):
        if key and key in text:
            return _CANCEL_REASONS[index]
    return _CANCEL_REASONS[0]


def _channels(rng: random.Random) -> tuple[list[str], str]:
    """The channels of one story and the identifier kind that ties them to one customer."""
    family = rng.choices(("email", "phone", "social"), weights=(5, 4, 1))[0]
    contacts = rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
    pool = {"email": ("chat", "email"), "phone": ("voice", "sms"), "social": ("social",)}[family]
    return [rng.choice(pool) for _ in range(contacts)], family


def stories(count: int = STORIES, *, now: datetime | None = None, seed: int = SEED) -> list[Story]:
    """`count` generated stories, the same ones for the same seed (dates follow `now`)."""
    now = now or datetime.now(UTC)
    rng = random.Random(seed)  # noqa: S311 - demo data, not a secret
    topics = list(phrases.TOPICS)
    generated = []
    for index in range(count):
        topic = rng.choice(topics)
        recent = topic == "delivery_delay" and rng.random() < 1 - 1 / _SPIKE
        who = _customer(rng, index)
        channels, family = _channels(rng)
        started = _business_hours(rng, now, recent=recent)
        events: list[tuple[str, pb.Interaction]] = []
        first_text = ""
        for number, channel in enumerate(channels):
            at = min(started + timedelta(hours=number * rng.uniform(2, 60)), now - _LATEST)
            text = _text(rng, topic, who.japanese)
            first_text = first_text or text
            key = f"story-{index}-{number}"
            events += _contact(rng, who=who, channel=channel, at=at, text=text, key=key)
        identifier = {
            "email": pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=who.email),
            "phone": pb.Identifier(kind=pb.IDENTIFIER_KIND_PHONE, value=who.phone),
            "social": pb.Identifier(
                kind=pb.IDENTIFIER_KIND_SOCIAL_HANDLE, value=who.handle, network="x"
            ),
        }[family]
        queue = [a for a in AGENTS if a.queue == phrases.TOPICS[topic].queue]
        agent = queue[index % len(queue)]
        actions = _actions(rng, f"story-{index}", topic, first_text)
        generated.append(Story(who.name, identifier, topic, agent, tuple(events), tuple(actions)))
    return generated


async def submit_stories(
    stories_: Sequence[Story], ingest_addresses: Mapping[str, str], tokens: Mapping[str, str]
) -> list[ingest_pb2.SubmitResult]:
    """Submit every story's contacts through the ingestion services, in batches per channel."""
    by_channel: dict[str, list[pb.Interaction]] = {}
    for story in stories_:
        for channel, interaction in story.events:
            by_channel.setdefault(channel, []).append(interaction)

    async def send(channel: str, items: list[pb.Interaction]) -> list[ingest_pb2.SubmitResult]:
        async with open_channel(ingest_addresses[channel], token=tokens[channel]) as opened:
            stub = ingest_pb2_grpc.IngestServiceStub(opened)
            results: list[ingest_pb2.SubmitResult] = []
            for start in range(0, len(items), _BATCH):
                request = ingest_pb2.SubmitBatchRequest(interactions=items[start : start + _BATCH])
                response = await stub.SubmitBatch(request, timeout=60)
                results.extend(response.results)
            return results

    sent = await asyncio.gather(*(send(c, items) for c, items in by_channel.items()))
    return [result for results in sent for result in results]


_MUTATION = """\
mutation DemoAction($customerId: ID!, $eventId: ID{declarations}) {{
  {name}(customerId: $customerId, eventId: $eventId{arguments}) {{ status }}
}}"""
_TYPES = {
    "reason": "String!",
    "outcome": "CancellationOutcome!",
    "note": "String",
    "level": "Int!",
    "toDepartment": "String!",
    "summary": "String!",
    "score": "Int!",
    "comment": "String",
}
_ENUM_ARGUMENTS = {("requestCancellation", "reason"): "CancellationReason!"}


def mutation_document(action: Action) -> str:
    """The GraphQL document that performs `action` (its variables are the action's)."""
    names = [n for n in action.variables if n != "eventId"]
    declarations = "".join(
        f", ${n}: {_ENUM_ARGUMENTS.get((action.mutation, n), _TYPES[n])}" for n in names
    )
    arguments = "".join(f", {n}: ${n}" for n in names)
    return _MUTATION.format(declarations=declarations, name=action.mutation, arguments=arguments)


async def act_on_stories(
    stories_: Sequence[Story],
    *,
    timeline_address: str,
    timeline_token: str,
    graphql_url: str,
    bearer: Callable[[Agent], str],
    within_seconds: float = 120,
) -> dict[str, int]:
    """Each story's agent performs its actions through the gateway, once the timeline has
    stored the story's customer.

    Args:
        stories_: As `stories` made them.
        timeline_address: ``host:port`` of the timeline (to find each customer's id).
        timeline_token: A service identity's bearer token for the timeline.
        graphql_url: The gateway.
        bearer: An agent's ``Authorization`` header value (a token naming that agent).
        within_seconds: How long to wait for the timeline to store the contacts.

    Returns:
        How many actions ended in each status (``STORED``, ``DUPLICATE``, ``missing`` for a
        customer the timeline never showed, ``failed`` for an action the gateway refused).
    """
    until = asyncio.get_running_loop().time() + within_seconds
    counts: dict[str, int] = {}
    async with open_channel(timeline_address, token=timeline_token) as channel:
        stub = timeline_pb2_grpc.TimelineServiceStub(channel)
        lookups = asyncio.Semaphore(_LOOKUPS)

        async def find(story: Story) -> str | None:
            request = timeline_pb2.ResolveIdentifierRequest(
                tenant=TENANT, identifier=story.identifier
            )
            async with lookups:
                return await resolve_when_stored(stub, request, until=until)

        ids = await asyncio.gather(*(find(s) for s in stories_))
    by_agent: dict[Agent, list[tuple[str | None, Action]]] = {}
    for story, customer_id in zip(stories_, ids, strict=True):
        by_agent.setdefault(story.agent, []).extend((customer_id, a) for a in story.actions)

    async def work(agent: Agent, queue: list[tuple[str | None, Action]]) -> None:
        async with graphql.http_session(graphql_url, authorization=bearer(agent)) as session:
            for customer_id, action in queue:
                status = await _perform(session, customer_id, action) if customer_id else "missing"
                counts[status] = counts.get(status, 0) + 1

    await asyncio.gather(*(work(agent, queue) for agent, queue in by_agent.items()))
    return counts


async def _perform(session: Any, customer_id: str, action: Action) -> str:
    from gql import GraphQLRequest
    from gql.transport.exceptions import TransportQueryError

    request = GraphQLRequest(
        mutation_document(action), variable_values={**action.variables, "customerId": customer_id}
    )
    for _ in range(30):
        try:
            result = await session.execute(request)
        except TransportQueryError as error:
            codes = {(e.get("extensions") or {}).get("code") for e in error.errors or []}
            if "RATE_LIMITED" not in codes:
                return "failed"
            await asyncio.sleep(1)  # the agent's mutation budget refills at 2 a second
            continue
        return str(result[action.mutation]["status"])
    return "failed"


async def populate(
    *,
    ingest_addresses: Mapping[str, str],
    tokens: Mapping[str, str],
    timeline_address: str,
    timeline_token: str,
    graphql_url: str,
    bearer: Callable[[Agent], str],
    count: int = STORIES,
) -> str:
    """Generate, submit and act on the demo's stories; a one-line account of what happened.

    Args:
        ingest_addresses: Channel → ``host:port`` of its ingestion service.
        tokens: Channel → the bearer token of that channel's adapter.
        timeline_address: ``host:port`` of the timeline.
        timeline_token: A service identity's bearer token for the timeline.
        graphql_url: The gateway.
        bearer: An agent's ``Authorization`` header value.
        count: How many stories.
    """
    started = asyncio.get_running_loop().time()
    generated = stories(count)
    results = await submit_stories(generated, ingest_addresses, tokens)
    accepted = sum(r.status == r.STATUS_ACCEPTED for r in results)
    actions = await act_on_stories(
        generated,
        timeline_address=timeline_address,
        timeline_token=timeline_token,
        graphql_url=graphql_url,
        bearer=bearer,
    )
    took = asyncio.get_running_loop().time() - started
    done = ", ".join(f"{n} {status.lower()}" for status, n in sorted(actions.items()))
    return (
        f"demo contacts: {len(generated)} customers, {len(results)} interactions "
        f"({accepted} new), agent actions: {done or 'none'} ({took:.1f}s)"
    )
