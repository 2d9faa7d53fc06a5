"""The entries of a batch of notices sent without theirs, read back in one bulk call a tenant."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.insights.words import ReadMany
from tsunagu.contracts import ContractViolation, canonical_event_id
from tsunagu.v1 import notices_pb2, timeline_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReadBacks:
    """What the timeline answered for a batch: entries by (tenant, event id), and per tenant
    the error that kept its read from answering."""

    found: Mapping[tuple[str, str], timeline_pb2.TimelineEntry] = field(default_factory=dict)
    failed: Mapping[str, Exception] = field(default_factory=dict)

    def entry(self, notice: notices_pb2.TimelineUpdated) -> timeline_pb2.TimelineEntry | None:
        """The entry read back for `notice`; None when the timeline has none (or it was too
        large to read).

        Raises:
            Exception: Why the read of the notice's tenant failed (the notice is retried).
        """
        if (error := self.failed.get(notice.tenant)) is not None:
            raise error
        return self.found.get((notice.tenant, notice.event_id))


async def read_backs(
    read_many: ReadMany, notices: Sequence[notices_pb2.TimelineUpdated]
) -> ReadBacks:
    """Read back the entries of the notices that carry none: one `read_many` per tenant.

    A tenant whose read fails fails only its own notices (kept in `failed`), never another
    tenant's; an id no event can have is not asked for (the timeline has no entry for it, and
    a hostile one must not spoil the tenant's read); an entry the timeline returns that was
    not asked for is ignored.
    """
    wanted: dict[str, set[str]] = {}
    for notice in notices:
        if not notice.HasField("entry") and _is_event_id(notice.event_id):
            wanted.setdefault(notice.tenant, set()).add(notice.event_id)
    found: dict[tuple[str, str], timeline_pb2.TimelineEntry] = {}
    failed: dict[str, Exception] = {}
    for tenant, event_ids in wanted.items():
        try:
            entries = await read_many(tenant, sorted(event_ids))
        except Exception as error:  # noqa: BLE001 - the tenant's notices are retried, no others
            log.warning("could not read entries back from the timeline: %s", type(error).__name__)
            failed[tenant] = error
            continue
        for entry in entries:
            if entry.interaction.event_id in event_ids:
                found[tenant, entry.interaction.event_id] = entry
    return ReadBacks(found, failed)


def _is_event_id(event_id: str) -> bool:
    """Whether an event can have this id (the timeline stores canonical ids only)."""
    try:
        return canonical_event_id(event_id) == event_id
    except ContractViolation:
        return False
