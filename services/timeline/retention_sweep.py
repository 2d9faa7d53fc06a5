"""The retention sweep: every `every_seconds`, delete the interactions and audit records whose
retention ran out (docs/privacy.md, Retention).

It does what MongoDB's TTL monitor does for a TTL index (a pass a minute), on both stores
alike; why not a TTL index is in `services/timeline/store/expiry.py`. Every replica sweeps:
the deletes are idempotent, and one that finds nothing costs one index lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from opentelemetry import metrics

from services.timeline.store.error_text import error_text
from tsunagu.lifecycle import Periodic

log = logging.getLogger(__name__)
_meter = metrics.get_meter(__name__)
_deleted = _meter.create_counter(
    "tsunagu.timeline.retention.deleted",
    unit="{document}",
    description="Documents deleted because their retention ran out, by collection.",
)

DeleteExpired = Callable[[datetime], Awaitable[int]]
"""Deletes what expired before the instant given; returns how many."""


class RetentionSweep(Periodic):
    """Runs each `(name, delete_expired)` every `every_seconds`, first at open."""

    def __init__(
        self,
        sweeps: Sequence[tuple[str, DeleteExpired]],
        *,
        every_seconds: float,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(every_seconds=every_seconds, name="timeline-retention-sweep")
        self._sweeps = list(sweeps)
        self._clock = clock

    async def sweep(self) -> dict[str, int]:
        """One pass over every collection; a store that fails is tried again next pass."""
        deleted: dict[str, int] = {}
        for name, delete_expired in self._sweeps:
            try:
                deleted[name] = await delete_expired(self._clock())
            except Exception as exc:  # noqa: BLE001 - store away: the next pass tries again
                log.warning("retention sweep of %s failed: %s", name, error_text(exc))
                continue
            if deleted[name]:
                _deleted.add(deleted[name], {"collection": name})
                log.info("retention: deleted %d from %s", deleted[name], name)
        return deleted

    async def tick(self) -> None:
        await self.sweep()
