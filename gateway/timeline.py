"""A customer's timeline: interactions as GraphQL sees them, and reading one page of them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Self

import strawberry

from gateway.consent import ConsentChange
from gateway.context import Info
from gateway.details import InteractionDetail, detail_from_proto
from gateway.enums import CHANNELS, DIRECTIONS, KINDS, Channel, Direction, Kind
from gateway.errors import ErrorCode, GatewayError, bad_user_input
from gateway.identifiers import Actor, Identifier
from gateway.loaders import CasePage
from gateway.paging import check_first
from gateway.scalars import instant, optional, optional_id, utc
from tsunagu.v1 import timeline_pb2

_log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100


@strawberry.type
class Attachment:
    filename: str | None
    content_type: str | None
    size_bytes: int
    uri: str | None = strawberry.field(description="Where the bytes live (object store).")


@strawberry.type
class InteractionFields:
    """What an interaction is, without its links to other nodes (see ``gateway.nodes``)."""

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
    consent: ConsentChange | None = strawberry.field(
        default=None, description="The decision of a CONSENT_CHANGE entry."
    )

    @classmethod
    def from_entry(cls, entry: timeline_pb2.TimelineEntry) -> Self | None:
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
        content = interaction.content
        return cls(
            event_id=strawberry.ID(interaction.event_id),
            customer_id=strawberry.ID(entry.customer_id),
            channel=channel,
            kind=kind,
            direction=DIRECTIONS.from_proto(interaction.direction),
            occurred_at=interaction.occurred_at.ToDatetime(tzinfo=UTC),
            recorded_at=instant(entry, "recorded_at"),
            conversation_ref=optional(interaction.conversation_ref),
            actor=Actor.of(interaction, "actor"),
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
            identifiers=Identifier.known(interaction.identifiers),
            detail=detail_from_proto(interaction),
            case_id=optional_id(entry.case_id),
            switched_from=CHANNELS.from_proto(entry.switched_from),
            consent=ConsentChange.of(interaction),
        )


async def read_page(
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
) -> timeline_pb2.ListInteractionsResponse:
    """Read one page of a customer's timeline.

    Raises:
        GatewayError: ``BAD_USER_INPUT`` for ``first`` outside 1..100 or ``since`` after
            ``until``; ``NOT_FOUND`` when the timeline no longer knows the customer.
    """
    check_first(first, MAX_PAGE_SIZE)
    if since is not None and until is not None and utc(since) > utc(until):
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
    return response


async def read_case_page(
    info: Info, customer_id: str, case_id: str, *, first: int, after: str | None
) -> timeline_pb2.ListInteractionsResponse:
    """Read one page of a case's interactions, batched with the operation's other cases.

    Raises:
        GatewayError: ``BAD_USER_INPUT`` for ``first`` outside 1..100; ``NOT_FOUND`` when
            the timeline no longer knows the customer.
    """
    check_first(first, MAX_PAGE_SIZE)
    page = CasePage(customer_id=customer_id, case_id=case_id, first=first, after=after or None)
    response = await info.context.loaders.case_timelines.load(page)
    if response is None:
        raise GatewayError(ErrorCode.NOT_FOUND, f"Customer {customer_id} not found.")
    return response
