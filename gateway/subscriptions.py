"""Subscriptions over graphql-transport-ws: a customer's timeline and a case, live.

Each GraphQL subscription follows one customer's ``timeline.updated.<tenant>.<customer>``
notices (``GatewayBus.follow``): the NATS server filters, so a gateway receives only what its
clients watch, and closing the subscription unsubscribes. After a merge the survivor is
followed too. Every push carries the stored entry: the one the notice carries
(``TimelineUpdated.entry``), or, when the timeline left it out because it was too large for
a notice, the one read back by event id.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import strawberry

from gateway.context import GatewayContext, Info
from gateway.enums import CASE_STATUSES, CHANNELS, KINDS, CaseStatus, Channel, Kind
from gateway.errors import ErrorCode, GatewayError
from gateway.insights import AtRiskChange, at_risk_changed
from gateway.nodes import Case, Interaction
from gateway.scalars import check_id
from gateway.tracing import push_span
from gateway.writes import live_customer_id
from tsunagu.v1.notices_pb2 import TimelineUpdated


@strawberry.type(description="One event stored on a watched customer's timeline.")
class TimelineUpdate:
    customer_id: strawberry.ID = strawberry.field(
        description="The customer the event is stored on (the survivor after a merge)."
    )
    event_id: strawberry.ID
    kind: Kind | None
    channel: Channel | None
    occurred_at: datetime | None
    case_id: strawberry.ID | None
    merged_into: strawberry.ID | None = strawberry.field(
        description=(
            "Set when this event merged the watched customer into another: the subscription "
            "goes on with that customer."
        )
    )
    entry: Interaction | None = strawberry.field(
        description="The stored interaction; null if it could not be read back."
    )


@strawberry.type(description="One event that changed a watched case.")
class CaseUpdate:
    case_id: strawberry.ID
    event_id: strawberry.ID
    kind: Kind | None
    channel: Channel | None
    status: CaseStatus | None = strawberry.field(
        description="The case's status after the event, as announced."
    )
    entry: Interaction | None
    case: Case | None = strawberry.field(description="The case as stored after the event.")


async def _entry(context: GatewayContext, notice: TimelineUpdated) -> Interaction | None:
    """The announced entry: the notice's own, else read back by event id (``GetInteractions``).

    The timeline held the entry a moment ago and sends it along whenever the notice stays
    under its size limit, so a read-back is only paid for the rare large entry.
    """
    if notice.HasField("entry"):
        return Interaction.from_entry(notice.entry)
    try:
        entries = await context.timeline.get_interactions(
            context.principal.tenant, [notice.event_id]
        )
    except GatewayError:
        # A push without its entry beats no push: the client can still re-read the timeline.
        return None
    return Interaction.from_entry(entries[0]) if entries else None


def _update(notice: TimelineUpdated, entry: Interaction | None) -> TimelineUpdate:
    return TimelineUpdate(
        customer_id=strawberry.ID(notice.merged_into or notice.customer_id),
        event_id=strawberry.ID(notice.event_id),
        kind=KINDS.from_proto(notice.kind),
        channel=CHANNELS.from_proto(notice.channel),
        occurred_at=notice.occurred_at.ToDatetime(tzinfo=UTC)
        if notice.HasField("occurred_at")
        else None,
        case_id=strawberry.ID(notice.case_id) if notice.case_id else None,
        merged_into=strawberry.ID(notice.merged_into) if notice.merged_into else None,
        entry=entry,
    )


async def _timeline_updated(
    info: Info, customer_id: strawberry.ID
) -> AsyncGenerator[TimelineUpdate, None]:
    context = info.context
    live = await live_customer_id(context, check_id("customerId", customer_id))
    async with context.bus.follow(
        context.principal.tenant, live, queue_size=context.subscription_queue_size
    ) as follower:
        async for notice, headers in follower:
            with push_span(notice, headers):
                update = _update(notice, await _entry(context, notice))
            yield update


async def _case_updated(info: Info, case_id: strawberry.ID) -> AsyncGenerator[CaseUpdate, None]:
    context = info.context
    checked = check_id("caseId", case_id)
    found = await context.loaders.cases.load(checked)
    if found is None:
        raise GatewayError(ErrorCode.NOT_FOUND, f"Case {checked} not found.")
    live = await live_customer_id(context, found.customer_id)
    async with context.bus.follow(
        context.principal.tenant, live, queue_size=context.subscription_queue_size
    ) as follower:
        async for notice, headers in follower:
            if notice.case_id != checked:
                continue
            with push_span(notice, headers):
                context.loaders.cases.clear(checked)
                current = await context.loaders.cases.load(checked)
                status = CASE_STATUSES.from_proto(notice.case_status)
                update = CaseUpdate(
                    case_id=strawberry.ID(checked),
                    event_id=strawberry.ID(notice.event_id),
                    kind=KINDS.from_proto(notice.kind),
                    channel=CHANNELS.from_proto(notice.channel),
                    status=status
                    or (CASE_STATUSES.from_proto(current.status) if current else None),
                    entry=await _entry(context, notice),
                    case=None if current is None else Case.from_proto(current),
                )
            yield update


@strawberry.type
class Subscription:
    timeline_updated: AsyncGenerator[TimelineUpdate, None] = strawberry.subscription(
        resolver=_timeline_updated,
        description="Every event stored on the customer's timeline, as it is stored.",
    )
    case_updated: AsyncGenerator[CaseUpdate, None] = strawberry.subscription(
        resolver=_case_updated,
        description="Every event that changes the case, as it is stored.",
    )
    at_risk_changed: AsyncGenerator[AtRiskChange, None] = strawberry.subscription(
        resolver=at_risk_changed,
        description="Customers whose at-risk reasons changed (supervisors).",
    )
