"""The timeline key: an interaction's page position as one sortable string."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.timeline.store.documents import aware

# Milliseconds from here keep every protobuf timestamp (years 1..9999) non-negative and 15
# digits wide, so that text order is time order.
_ORIGIN = datetime(1, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_WIDTH = 15


def instant_bound(at: datetime) -> str:
    """Keys of interactions at `at` or later sort at or after this; earlier ones before it.

    Stored dates have millisecond precision (BSON rounds down): so does this bound, so that a
    range over keys selects what the same range over `occurred_at` would.
    """
    return f"{(aware(at) - _ORIGIN) // _MILLISECOND:0{_WIDTH}d}"


def timeline_key(occurred_at: datetime, event_id: str) -> str:
    """`(occurred_at, event_id)` as text that sorts like the pair (the prefix is fixed-width)."""
    return f"{instant_bound(occurred_at)}:{event_id}"
