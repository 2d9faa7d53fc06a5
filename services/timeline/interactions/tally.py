"""A customer's counts and contact dates as the log has them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.timeline.store.documents import aware


@dataclass(frozen=True, slots=True)
class Tally:
    """A customer's counts and contact dates, read from the log (a recount after a crash,
    a merge or a split).

    Attributes:
        pending: Event ids counted here but not projected yet (read with the counts, from the
            same documents): their writer finds them in the customer's `counted_pending` and
            does not count them a second time.
    """

    pending: list[str]
    by_channel: dict[str, int]
    first_contact_at: datetime | None
    last_contact_at: datetime | None


def tally_of(entries: Iterable[Mapping[str, Any]]) -> Tally:
    """The tally of log entries read with `channel`, `projected`, `event_id`, `occurred_at`."""
    by_channel: dict[str, int] = {}
    pending: list[str] = []
    first: datetime | None = None
    last: datetime | None = None
    for entry in entries:
        by_channel[entry["channel"]] = by_channel.get(entry["channel"], 0) + 1
        if not entry.get("projected"):
            pending.append(entry["event_id"])
        at = aware(entry["occurred_at"])
        first = at if first is None or at < first else first
        last = at if last is None or at > last else last
    return Tally(sorted(pending), by_channel, first, last)
