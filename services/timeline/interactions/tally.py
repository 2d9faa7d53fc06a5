"""A customer's counts and contact dates as the log has them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
