"""Publishes `tsunagu.v1.TimelineUpdated` after a batch committed (stored and projected)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from nats.aio.client import Client
from opentelemetry import trace
from opentelemetry.context import Context

from services.timeline.cases.documents import CASE_STATUSES_BY_TOKEN
from services.timeline.recorder import Recorded
from tsunagu.bus.notices import customer_subject, encode_notice
from tsunagu.bus.tracing import EVENT_ID, TENANT, with_trace_context
from tsunagu.v1 import notices_pb2

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


def notices_of(recorded: Recorded) -> list[notices_pb2.TimelineUpdated]:
    """One notice per customer whose timeline changed: the customer the event landed on, each
    customer it merged away (with `merged_into`), each customer a split restored (with
    `split_from`). None for a duplicate whose first recording was announced.
    """
    if recorded.entry is None:
        return []
    entry = recorded.entry
    interaction = entry.interaction
    notice = notices_pb2.TimelineUpdated(
        tenant=recorded.tenant,
        customer_id=recorded.customer_id,
        event_id=recorded.event_id,
        channel=interaction.channel,
        kind=interaction.kind,
        occurred_at=interaction.occurred_at,
        recorded_at=entry.recorded_at,
        merged_ids=recorded.merged_ids,
        case_id=recorded.case_id,
        case_status=CASE_STATUSES_BY_TOKEN.get(recorded.case_status, 0),  # type: ignore[arg-type]
        entry=entry,
    )
    # A split gave each restored customer its records back: its own timeline changed too.
    return [
        notice,
        *(_for(notice, m, merged_into=recorded.customer_id) for m in recorded.merged_ids),
        *(_for(notice, r, split_from=recorded.customer_id) for r in recorded.restored_ids),
    ]


def _for(
    notice: notices_pb2.TimelineUpdated, customer_id: str, **link: str
) -> notices_pb2.TimelineUpdated:
    """The notice as another customer hears it, with whom it is linked to now."""
    copy = notices_pb2.TimelineUpdated()
    copy.CopyFrom(notice)
    copy.customer_id = customer_id
    for name, value in link.items():
        setattr(copy, name, value)
    return copy


class TimelineAnnouncer:
    """Sends recorded events' notices on core NATS (`timeline.updated.<tenant>.<customer>`),
    with the current trace context in the headers.

    Without ``with_entries`` (encryption on) a notice carries ids, kinds and times only:
    the `TIMELINE_UPDATED` stream captures notices on disk, and the entry's words would be
    plaintext there; subscribers read the entry back by event id, as for an oversized one.
    """

    def __init__(self, nc: Client, *, with_entries: bool = True) -> None:
        self._nc = nc
        self._with_entries = with_entries

    async def __call__(self, batch: Sequence[Recorded], contexts: Sequence[Context] = ()) -> None:
        """Publish the notices, and return once the server has them (they may be noted as
        announced then).

        Each event's notices go out in a span of `contexts` (its settle span, same order; the
        current context without them): the gateway's push continues that span's trace, one
        trace from the adapter's call to the agent's screen.
        """
        for index, recorded in enumerate(batch):
            notices = notices_of(recorded)
            if not notices:
                continue
            with tracer.start_as_current_span(
                "timeline.updated publish",
                context=contexts[index] if index < len(contexts) else None,
                kind=trace.SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "nats",
                    EVENT_ID: recorded.event_id,
                    TENANT: recorded.tenant,
                    "messaging.batch.message_count": len(notices),
                },
            ):
                carrier = with_trace_context({})
                for notice in notices:
                    try:
                        subject = customer_subject(notice.tenant, notice.customer_id)
                    except ValueError:
                        log.warning(
                            "no notice for customer id %r: not a subject token",
                            notice.customer_id,
                        )
                        continue
                    if not self._with_entries:
                        notice.ClearField("entry")
                    await self._nc.publish(subject, encode_notice(notice), headers=carrier or None)
        await self._nc.flush()
