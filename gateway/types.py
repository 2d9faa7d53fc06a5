"""GraphQL object types of the customer view: customers, their identifiers and timeline."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.context import Info
from gateway.details import InteractionDetail, detail_from_proto, optional
from gateway.enums import (
    ACTOR_TYPES,
    CASE_STATUSES,
    CHANNELS,
    DIRECTIONS,
    IDENTIFIER_KINDS,
    KINDS,
    ActorType,
    CaseStatus,
    Channel,
    Direction,
    IdentifierKind,
    Kind,
)
from gateway.errors import ErrorCode, GatewayError, bad_user_input
from tsunagu.v1 import interaction_pb2, timeline_pb2

if TYPE_CHECKING:
    from gateway.cases import Case, CaseConnection
    from gateway.merges import MergeRecord, MergeSuggestion

_log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
# Longer than any id the timeline hands out; stops abuse of id arguments.
MAX_ID_LENGTH = 256


def check_id(name: str, value: str) -> str:
    """Check an id argument: not blank, not oversized, no control characters.

    Args:
        name: The argument's GraphQL name, for the message.
        value: The id as sent.

    Returns:
        The id.

    Raises:
        GatewayError: ``BAD_USER_INPUT`` naming the argument.
    """
    if not value.strip():
        raise bad_user_input(f"`{name}` must not be empty.")
    if len(value) > MAX_ID_LENGTH:
        raise bad_user_input(f"`{name}` must be at most {MAX_ID_LENGTH} characters.")
    if not value.isprintable():
        raise bad_user_input(f"`{name}` must not contain control characters.")
    return str(value)


def _datetime(timestamp: Timestamp) -> datetime:
    return timestamp.ToDatetime(tzinfo=UTC)


@strawberry.type
class Identifier:
    kind: IdentifierKind
    value: str
    network: str | None = strawberry.field(description="Social network, for SOCIAL_HANDLE.")
    verified: bool

    @classmethod
    def from_proto(cls, identifier: interaction_pb2.Identifier) -> Identifier | None:
        """Convert an identifier; ``None`` for a kind this gateway does not know."""
        kind = IDENTIFIER_KINDS.from_proto(identifier.kind)
        if kind is None:
            return None
        return cls(
            kind=kind,
            value=identifier.value,
            network=optional(identifier.network),
            verified=identifier.verified,
        )


def _identifiers(identifiers: list[interaction_pb2.Identifier]) -> list[Identifier]:
    converted = (Identifier.from_proto(identifier) for identifier in identifiers)
    return [identifier for identifier in converted if identifier is not None]


@strawberry.type
class ChannelCount:
    channel: Channel
    count: int


@strawberry.type
class Actor:
    type: ActorType | None
    id: str | None = strawberry.field(description="Agent, bot or system id; null for customers.")
    display_name: str | None


def actor_from_proto(actor: interaction_pb2.Actor) -> Actor:
    """Convert who acted (customer, agent, bot or system)."""
    return Actor(
        type=ACTOR_TYPES.from_proto(actor.type),
        id=optional(actor.id),
        display_name=optional(actor.display_name),
    )


@strawberry.type
class Attachment:
    filename: str | None
    content_type: str | None
    size_bytes: int
    uri: str | None = strawberry.field(description="Where the bytes live (object store).")


async def _load_case(
    info: Info, case_id: strawberry.ID | None
) -> Annotated[Case, strawberry.lazy("gateway.cases")] | None:
    from gateway.cases import Case

    if case_id is None:
        return None
    found = await info.context.loaders.cases.load(str(case_id))
    return None if found is None else Case.from_proto(found)


async def _interaction_case(
    root: Interaction, info: Info
) -> Annotated[Case, strawberry.lazy("gateway.cases")] | None:
    return await _load_case(info, root.case_id)


async def _open_case(
    root: Customer, info: Info
) -> Annotated[Case, strawberry.lazy("gateway.cases")] | None:
    return await _load_case(info, root.open_case_id)


async def _customer_cases(
    root: Customer,
    info: Info,
    *,
    first: int = 20,
    after: str | None = None,
    statuses: list[CaseStatus] | None = None,
) -> Annotated[CaseConnection, strawberry.lazy("gateway.cases")]:
    from gateway.cases import list_cases

    case_filter = timeline_pb2.CaseFilter(
        customer_id=str(root.id),
        statuses=[CASE_STATUSES.to_proto(status) for status in statuses or ()],
    )
    return await list_cases(info, case_filter, first=first, after=after)


async def _merge_history(
    root: Customer, info: Info
) -> list[Annotated[MergeRecord, strawberry.lazy("gateway.merges")]]:
    from gateway.merges import MergeRecord

    records = await info.context.loaders.merge_history.load(str(root.id))
    return [MergeRecord.from_proto(record) for record in records]


async def _merge_suggestions(
    root: Customer, info: Info, first: int = 50
) -> list[Annotated[MergeSuggestion, strawberry.lazy("gateway.merges")]]:
    from gateway.merges import list_suggestions

    return await list_suggestions(info, customer_id=str(root.id), first=first)


@strawberry.type
class Interaction:
    event_id: strawberry.ID
    customer_id: strawberry.ID
    channel: Channel
    kind: Kind
    direction: Direction | None
    occurred_at: datetime
    recorded_at: datetime | None
    conversation_ref: str | None = strawberry.field(
        description="Channel-native thread key: chat session, call id, email thread, ..."
    )
    actor: Actor | None
    text: str | None
    subject: str | None
    language: str | None = strawberry.field(description="BCP 47 tag, when known.")
    attachments: list[Attachment]
    identifiers: list[Identifier] = strawberry.field(
        description="Identifiers of the customer as this channel saw them."
    )
    detail: InteractionDetail | None
    case_id: strawberry.ID | None = strawberry.field(
        description="The case the timeline attached the interaction to."
    )
    switched_from: Channel | None = strawberry.field(
        description="Set when this contact continued an open case from another channel."
    )

    case: Annotated[Case, strawberry.lazy("gateway.cases")] | None = strawberry.field(
        resolver=_interaction_case,
        description="The case the interaction belongs to (batched).",
    )

    @classmethod
    def from_entry(cls, entry: timeline_pb2.TimelineEntry) -> Interaction | None:
        """Convert a timeline entry.

        Returns:
            The interaction, or ``None`` when its channel or kind is newer than this gateway.
        """
        interaction = entry.interaction
        channel = CHANNELS.from_proto(interaction.channel)
        kind = KINDS.from_proto(interaction.kind)
        if channel is None or kind is None:
            # The timeline speaks a newer contract than this gateway; a wrong label would
            # mislead the agent, so the entry is left out and the operator told.
            _log.warning(
                "skipping timeline entry %s with unknown channel %d or kind %d",
                interaction.event_id,
                interaction.channel,
                interaction.kind,
            )
            return None
        actor = interaction.actor if interaction.HasField("actor") else None
        content = interaction.content
        return cls(
            event_id=strawberry.ID(interaction.event_id),
            customer_id=strawberry.ID(entry.customer_id),
            channel=channel,
            kind=kind,
            direction=DIRECTIONS.from_proto(interaction.direction),
            occurred_at=_datetime(interaction.occurred_at),
            recorded_at=_datetime(entry.recorded_at) if entry.HasField("recorded_at") else None,
            conversation_ref=optional(interaction.conversation_ref),
            actor=None if actor is None else actor_from_proto(actor),
            text=optional(content.text),
            subject=optional(content.subject),
            language=optional(content.language),
            attachments=[
                Attachment(
                    filename=optional(attachment.filename),
                    content_type=optional(attachment.content_type),
                    size_bytes=attachment.size_bytes,
                    uri=optional(attachment.uri),
                )
                for attachment in content.attachments
            ],
            identifiers=_identifiers(list(interaction.identifiers)),
            detail=detail_from_proto(interaction),
            case_id=strawberry.ID(entry.case_id) if entry.case_id else None,
            switched_from=CHANNELS.from_proto(entry.switched_from),
        )


@strawberry.type
class InteractionEdge:
    cursor: str
    node: Interaction


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="Always false: pages are read forward only (allowed by the Relay spec)."
    )
    start_cursor: str | None
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")


@strawberry.type(description="A page of a customer's timeline, newest first.")
class InteractionConnection:
    edges: list[InteractionEdge]
    page_info: PageInfo

    @classmethod
    def from_response(
        cls, response: timeline_pb2.ListInteractionsResponse
    ) -> InteractionConnection:
        """Convert one page of ``ListInteractions``."""
        edges = []
        for entry in response.entries:
            node = Interaction.from_entry(entry)
            if node is not None:
                edges.append(InteractionEdge(cursor=entry.cursor, node=node))
        # The timeline's own continuation cursor wins: it also covers entries left out above.
        end_cursor = response.next_cursor or (edges[-1].cursor if edges else None)
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=response.has_more,
                has_previous_page=False,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=end_cursor,
            ),
        )


async def read_timeline(
    info: Info,
    customer_id: str,
    *,
    first: int,
    after: str | None,
    channels: list[Channel] | None = None,
    kinds: list[Kind] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    case_id: str | None = None,
) -> InteractionConnection:
    """Read one page of a customer's timeline.

    Raises:
        GatewayError: ``BAD_USER_INPUT`` for ``first`` outside 1..100 or ``since`` after
            ``until``; ``NOT_FOUND`` when the timeline no longer knows the customer.
    """
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise bad_user_input(f"`first` must be between 1 and {MAX_PAGE_SIZE}, got {first}.")
    if since is not None and until is not None and _utc(since) > _utc(until):
        raise bad_user_input("`since` must not be later than `until`.")
    response = await info.context.timeline.list_interactions(
        info.context.principal.tenant,
        customer_id,
        page_size=first,
        after=after or None,
        channels=[CHANNELS.to_proto(channel) for channel in channels or ()],
        kinds=[KINDS.to_proto(kind) for kind in kinds or ()],
        since=since,
        until=until,
        case_id=case_id,
    )
    if response is None:
        raise GatewayError(ErrorCode.NOT_FOUND, f"Customer {customer_id} not found.")
    return InteractionConnection.from_response(response)


async def resolve_timeline(
    root: Customer,
    info: Info,
    *,
    first: int = 20,
    after: str | None = None,
    channels: list[Channel] | None = None,
    kinds: list[Kind] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    case_id: strawberry.ID | None = None,
) -> InteractionConnection:
    """Read one page of a customer's timeline (arguments as in the SDL)."""
    return await read_timeline(
        info,
        str(root.id),
        first=first,
        after=after,
        channels=channels,
        kinds=kinds,
        since=since,
        until=until,
        case_id=None if case_id is None else check_id("caseId", case_id),
    )


@strawberry.type(description="What the last agent said about the customer (a note or a handoff).")
class AgentRemark:
    event_id: strawberry.ID
    kind: Kind | None
    agent: Actor | None
    text: str | None
    open_questions: list[str]
    occurred_at: datetime | None
    case_id: strawberry.ID | None

    @classmethod
    def from_proto(cls, remark: timeline_pb2.AgentRemark) -> AgentRemark:
        """Convert the remark the timeline keeps on the customer."""
        return cls(
            event_id=strawberry.ID(remark.event_id),
            kind=KINDS.from_proto(remark.kind),
            agent=actor_from_proto(remark.agent) if remark.HasField("agent") else None,
            text=optional(remark.text),
            open_questions=list(remark.open_questions),
            occurred_at=_datetime(remark.occurred_at) if remark.HasField("occurred_at") else None,
            case_id=strawberry.ID(remark.case_id) if remark.case_id else None,
        )


@strawberry.type(description="One person across every channel.")
class Customer:
    id: strawberry.ID
    display_name: str | None
    identifiers: list[Identifier]
    channels: list[Channel]
    first_contact_at: datetime | None
    last_contact_at: datetime | None
    interaction_count: int
    interactions_by_channel: list[ChannelCount]
    merged_ids: list[strawberry.ID] = strawberry.field(
        description="Ids of customers merged into this one; they still resolve to it."
    )
    last_agent_remark: AgentRemark | None = strawberry.field(
        description="What the last agent said (note or handoff): shown at the top of the view."
    )
    open_case_id: strawberry.ID | None = strawberry.field(
        description="The customer's open (not resolved) case, if any."
    )

    open_case: Annotated[Case, strawberry.lazy("gateway.cases")] | None = strawberry.field(
        resolver=_open_case,
        description="The open case, with its SLA clocks and follow-ups (batched).",
    )
    cases: Annotated[CaseConnection, strawberry.lazy("gateway.cases")] = strawberry.field(
        resolver=_customer_cases,
        description="The customer's cases, most recently updated first (first: 1-100).",
    )
    merge_history: list[Annotated[MergeRecord, strawberry.lazy("gateway.merges")]] = (
        strawberry.field(
            resolver=_merge_history,
            description="The identity ledger entries this customer took part in, oldest first.",
        )
    )
    merge_suggestions: list[Annotated[MergeSuggestion, strawberry.lazy("gateway.merges")]] = (
        strawberry.field(
            resolver=_merge_suggestions,
            description="Open merge suggestions involving this customer (first: 1-200).",
        )
    )

    @classmethod
    def from_proto(cls, customer: timeline_pb2.Customer) -> Customer:
        """Convert a customer profile."""
        channels = (CHANNELS.from_proto(channel) for channel in customer.channels)
        return cls(
            id=strawberry.ID(customer.id),
            display_name=optional(customer.display_name),
            identifiers=_identifiers(list(customer.identifiers)),
            channels=[channel for channel in channels if channel is not None],
            first_contact_at=_datetime(customer.first_contact_at)
            if customer.HasField("first_contact_at")
            else None,
            last_contact_at=_datetime(customer.last_contact_at)
            if customer.HasField("last_contact_at")
            else None,
            interaction_count=customer.interaction_count,
            interactions_by_channel=_channel_counts(customer),
            merged_ids=[strawberry.ID(merged) for merged in customer.merged_ids],
            last_agent_remark=AgentRemark.from_proto(customer.last_agent_remark)
            if customer.HasField("last_agent_remark")
            else None,
            open_case_id=strawberry.ID(customer.open_case_id) if customer.open_case_id else None,
        )

    timeline: InteractionConnection = strawberry.field(
        resolver=resolve_timeline,
        description="The customer's interactions on every channel, newest first.",
    )


def _utc(value: datetime) -> datetime:
    # Naive instants are read as UTC, as everywhere in the gateway.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _channel_counts(customer: timeline_pb2.Customer) -> list[ChannelCount]:
    counts: list[ChannelCount] = []
    # The map is keyed by channel name; accept "CHANNEL_CHAT", "CHAT" or "chat" alike.
    for key, count in customer.interactions_by_channel.items():
        channel = CHANNELS.from_name(key)
        if channel is None:
            _log.warning(
                "customer %s: unknown channel %r in interactions_by_channel", customer.id, key
            )
            continue
        counts.append(ChannelCount(channel=channel, count=count))
    order = list(Channel)
    return sorted(counts, key=lambda entry: order.index(entry.channel))
