"""The sweep's schedule and failures (pure logic; the deletes themselves are tested on the real
store in tests/integration/test_retention_sweep.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.timeline.retention_sweep import RetentionSweep

NOW = datetime(2026, 3, 1, tzinfo=UTC)


async def test_a_failing_collection_does_not_keep_the_others_from_being_swept() -> None:
    asked: list[tuple[str, datetime]] = []

    async def interactions(now: datetime) -> int:
        asked.append(("interactions", now))
        raise ConnectionError("store away")

    async def audit(now: datetime) -> int:
        asked.append(("audit_log", now))
        return 3

    sweep = RetentionSweep(
        [("interactions", interactions), ("audit_log", audit)],
        every_seconds=60,
        clock=lambda: NOW,
    )
    assert await sweep.sweep() == {"audit_log": 3}
    assert asked == [("interactions", NOW), ("audit_log", NOW)]


async def test_it_sweeps_at_open_then_every_period_and_stops_at_close() -> None:
    passes = asyncio.Queue[datetime]()

    async def collection(now: datetime) -> int:
        passes.put_nowait(now)
        return 0

    async with RetentionSweep([("c", collection)], every_seconds=0.01, clock=lambda: NOW):
        for _ in range(3):  # the pass at open, then two more on the period
            assert await asyncio.wait_for(passes.get(), 60) == NOW
    seen = passes.qsize()
    await asyncio.sleep(0.05)
    assert passes.qsize() == seen  # closed: no more passes
