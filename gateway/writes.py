"""Performing an agent action: publish it, then wait (bounded) until the timeline stored it.

Read-your-writes: before publishing, the mutation starts listening for the timeline's
``timeline.updated`` notice of its event id (``GatewayBus.expect``), so the notice cannot
slip by between publish and listen. It then waits at most ``write_wait_seconds``. Either
way a ``LookupEvents`` call decides: the notice only wakes the mutation early, the timeline
is the authority (and on a timeout it closes the race of a notice that was never heard).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.agent_actions import PlannedAction, to_interaction
from gateway.context import GatewayContext
from gateway.enums import WriteStatus
from gateway.errors import ErrorCode, GatewayError
from gateway.timeline_client import TimelineCallFailed
from tsunagu.v1.notices_pb2 import TimelineUpdated

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteOutcome:
    """What a mutation achieved.

    Attributes:
        event_id: The event's id (the client's ``eventId`` or a fresh UUID).
        status: ``STORED`` once the timeline has it, else ``ACCEPTED``.
        customer_id: Where the event is stored (the survivor after a merge), when stored.
        case_id: The event's case, when known.
    """

    event_id: str
    status: WriteStatus
    customer_id: str | None
    case_id: str | None


async def live_customer_id(context: GatewayContext, customer_id: str) -> str:
    """The id of the live customer behind ``customer_id`` (its survivor when merged).

    Checked before publishing because the timeline dead-letters an action about a customer
    it does not know: the agent must hear NOT_FOUND now, not ACCEPTED and silence.

    Raises:
        GatewayError: ``NOT_FOUND``.
    """
    found = await context.loaders.customers.load(customer_id)
    if found is None:
        raise GatewayError(ErrorCode.NOT_FOUND, f"Customer {customer_id} not found.")
    return found.id


async def perform(
    context: GatewayContext,
    action: PlannedAction,
    *,
    customer_id: str,
    case_id: str | None,
    event_id: str,
) -> WriteOutcome:
    """Publish an action about a (checked, live) customer and wait until it is stored.

    Args:
        context: The operation's context (principal, bus, timeline, loaders).
        action: The validated action.
        customer_id: The live customer the action is about.
        case_id: The case it applies to, if any.
        event_id: The idempotency key.

    Returns:
        The outcome; never an error once the bus has acknowledged the event.

    Raises:
        GatewayError: ``BUS_UNAVAILABLE`` when the event could not be published.
    """
    principal = context.principal
    tenant = principal.tenant
    interaction = to_interaction(
        action,
        principal=principal,
        customer_id=customer_id,
        case_id=case_id,
        event_id=event_id,
        now=datetime.now(UTC),
    )
    bus = context.bus
    async with bus.expect(tenant, event_id) as stored:
        published = await bus.publish(interaction, roles=principal.roles)
        notice: TimelineUpdated | None = None
        if not published.duplicate:
            # A duplicate was stored (or is on its way) from the first attempt, and the
            # timeline announces an event once: go straight to the authority then.
            notice = await _wait(stored, context.write_wait_seconds)
        elif stored.done() and not stored.cancelled():
            notice = stored.result()
    stored_on = await _stored_on(context, event_id, notice)
    if stored_on is None and published.duplicate:
        # A retry that overtook the first attempt's processing: give it the bounded wait too.
        async with bus.expect(tenant, event_id) as stored_again:
            stored_on = await _stored_on(
                context, event_id, await _wait(stored_again, context.write_wait_seconds)
            )
    context.loaders.forget_writes(
        customer_ids=[customer_id, *([stored_on] if stored_on else [])],
        case_ids=[case_id] if case_id else [],
    )
    if stored_on is None:
        _log.info("event %s accepted; not stored within the wait", event_id)
        return WriteOutcome(event_id, WriteStatus.ACCEPTED, None, case_id)
    case = (notice.case_id if notice else None) or case_id
    return WriteOutcome(event_id, WriteStatus.STORED, stored_on, case)


async def _wait(stored: asyncio.Future[TimelineUpdated], seconds: float) -> TimelineUpdated | None:
    try:
        async with asyncio.timeout(seconds):
            return await asyncio.shield(stored)
    except TimeoutError:
        return None


async def _stored_on(
    context: GatewayContext, event_id: str, notice: TimelineUpdated | None
) -> str | None:
    """Ask the timeline where the event is stored; the notice answers if it cannot."""
    try:
        found = await context.timeline.lookup_events(context.principal.tenant, [event_id])
    except (GatewayError, TimelineCallFailed) as error:
        # The bus has the event: failing the mutation now would only invite a retry.
        _log.warning("LookupEvents for %s failed (%s); using the notice", event_id, error)
        found = {}
    if event_id in found:
        return found[event_id]
    if notice is not None:
        # Heard but not (yet) visible to this timeline replica's read: it was committed.
        return notice.merged_into or notice.customer_id
    return None
