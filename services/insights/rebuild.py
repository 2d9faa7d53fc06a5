"""`python -m services.insights.rebuild`: forget the read model and rebuild it from the log.

The log is the outcomes mirror (every timeline notice, kept as long as the interactions);
the rebuild reads it from the start through an ephemeral consumer and applies every notice
as the live feed does, so it gives the same figures. Run it with the service stopped (or
accept that figures are incomplete until it finishes).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.insights.feed import notice_of
from services.insights.projector import Applied
from services.insights.service import bootstrap
from services.insights.settings import InsightsSettings
from services.insights.store import open_store
from services.insights.timeline_reads import TimelineReads
from tsunagu.bus.connection import connect_as
from tsunagu.bus.streams import TIMELINE_OUTCOMES_STREAM, require_streams
from tsunagu.runtime import configure_logging, parse_settings

log = logging.getLogger(__name__)
_BATCH = 256
_FETCH_SECONDS = 5.0
# The server removes the rebuild's consumer this long after its last fetch.
_IDLE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Rebuilt:
    notices: int
    recorded: int
    skipped: int


async def rebuild(settings: InsightsSettings) -> Rebuilt:
    """Clear the insights collections and apply every notice of the log again."""
    mongo, store = open_store(settings)
    nc = await connect_as(settings, name="tsunagu-insights-rebuild")
    timeline = TimelineReads(
        settings.timeline_address,
        token=settings.timeline_token.get_secret_value(),
        timeout_seconds=settings.timeline_timeout_seconds,
    )
    try:
        js = nc.jetstream()
        await require_streams(js, (TIMELINE_OUTCOMES_STREAM,), wait_seconds=5.0)
        await store.ensure_indexes()
        await store.clear()
        await timeline.open()
        projector = bootstrap(settings, store=store, read_many=timeline.entries).projector
        reader = await js.pull_subscribe(
            settings.subject_filter,
            stream=TIMELINE_OUTCOMES_STREAM,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.NONE,
                filter_subject=settings.subject_filter,
                inactive_threshold=_IDLE_SECONDS,
            ),
        )
        notices = recorded = skipped = 0
        pending = (await reader.consumer_info()).num_pending
        while pending:
            batch = await reader.fetch(min(pending, _BATCH), timeout=_FETCH_SECONDS)
            notices += len(batch)
            good = [n for n in map(notice_of, batch) if n is not None]
            skipped += len(batch) - len(good)
            for outcome in await projector.apply(good):
                if isinstance(outcome, Exception):
                    raise outcome
                recorded += outcome is Applied.RECORDED
            pending = batch[-1].metadata.num_pending
        await reader.unsubscribe()
        return Rebuilt(notices, recorded, skipped)
    finally:
        await timeline.close()
        await nc.drain()
        await mongo.close()


def main() -> None:
    configure_logging(service="insights-rebuild")
    settings = parse_settings(InsightsSettings)
    done = asyncio.run(rebuild(settings))
    print(
        f"rebuilt insights from {done.notices} notices: {done.recorded} events recorded, "
        f"{done.skipped} malformed skipped",
        flush=True,
    )


if __name__ == "__main__":
    main()
