"""A batch's entries are read back with one call per tenant; one tenant's failure is its own."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest

from services.insights.read_backs import read_backs
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1 import notices_pb2, timeline_pb2


class Timeline:
    """Stands in for `TimelineReads.entries`: what it was asked, and what it holds."""

    def __init__(self, held: dict[str, set[str]], *, down: frozenset[str] = frozenset()) -> None:
        self.held = held
        self.down = down
        self.asked: list[tuple[str, list[str]]] = []

    async def entries(
        self, tenant: str, event_ids: Sequence[str]
    ) -> list[timeline_pb2.TimelineEntry]:
        self.asked.append((tenant, list(event_ids)))
        if tenant in self.down:
            raise ConnectionError("the timeline is away")
        # An entry nobody asked for comes back too: it must be ignored.
        stray = timeline_pb2.TimelineEntry(interaction=pb.Interaction(event_id=_id()))
        return [_entry(tenant, e) for e in event_ids if e in self.held.get(tenant, set())] + [stray]


def _id() -> str:
    return str(uuid.uuid4())


def _entry(tenant: str, event_id: str) -> timeline_pb2.TimelineEntry:
    interaction = pb.Interaction(tenant=tenant, event_id=event_id)
    return timeline_pb2.TimelineEntry(interaction=interaction, case_id="k")


def _notice(tenant: str, event_id: str, *, carried: bool = False) -> notices_pb2.TimelineUpdated:
    notice = notices_pb2.TimelineUpdated(tenant=tenant, customer_id="c", event_id=event_id)
    if carried:
        notice.entry.CopyFrom(_entry(tenant, event_id))
    return notice


async def test_one_call_per_tenant_for_the_notices_without_their_entry() -> None:
    a, b = [_id() for _ in range(3)], [_id() for _ in range(2)]
    timeline = Timeline({"ta": set(a), "tb": set(b)})
    notices = [
        *(_notice("ta", e) for e in a),
        *(_notice("tb", e) for e in b),
        _notice("ta", a[0]),  # a redelivery in the same batch
        _notice("tb", _id(), carried=True),  # carries its entry: nothing to read
    ]
    read = await read_backs(timeline.entries, notices)
    assert sorted((t, sorted(ids)) for t, ids in timeline.asked) == [
        ("ta", sorted(a)),
        ("tb", sorted(b)),
    ]
    for notice in notices[:-1]:
        found = read.entry(notice)
        assert found is not None
        assert found.interaction.event_id == notice.event_id
    assert len(read.found) == len(a) + len(b)


async def test_ids_no_event_can_have_are_not_asked_for() -> None:
    good = _id()
    timeline = Timeline({"ta": {good}})
    hostile = ["", "x" * 40_000, "00000000-0000-0000-0000-000000000000", good.upper()]
    notices = [_notice("ta", good), *(_notice("ta", h) for h in hostile)]
    read = await read_backs(timeline.entries, notices)
    assert timeline.asked == [("ta", [good])]
    assert read.entry(notices[0]) is not None
    assert all(read.entry(n) is None for n in notices[1:])


async def test_a_tenant_whose_read_fails_fails_only_its_own_notices() -> None:
    mine, theirs, unknown = _id(), _id(), _id()
    timeline = Timeline({"ok": {mine}}, down=frozenset({"down"}))
    read = await read_backs(
        timeline.entries,
        [_notice("down", theirs), _notice("ok", mine), _notice("ok", unknown)],
    )
    with pytest.raises(ConnectionError):
        read.entry(_notice("down", theirs))
    assert read.entry(_notice("ok", mine)) is not None
    # Not stored (or too large to read): no entry, as the timeline answers.
    assert read.entry(_notice("ok", unknown)) is None
