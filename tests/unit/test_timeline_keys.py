"""Timeline keys sort like (occurred_at, event_id) and bound ranges like stored dates do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.timeline.interactions.keys import instant_bound, timeline_key

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_keys_sort_like_the_pair_across_ties_prefixes_and_centuries() -> None:
    pairs = [
        (datetime(1, 1, 1, tzinfo=UTC), "a"),
        (datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), "z"),
        (T0, "e"),
        (T0, "e1"),  # an event id that extends another sorts after it, as in the pair
        (T0, "f"),
        (T0 + timedelta(milliseconds=1), "a"),
        (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC), "a"),
    ]
    keys = [timeline_key(at, event_id) for at, event_id in pairs]
    assert sorted(keys) == keys
    assert len({len(key.split(":", 1)[0]) for key in keys}) == 1


def test_a_window_bound_selects_what_the_same_bound_on_stored_dates_selects() -> None:
    # Stored dates keep milliseconds (BSON rounds down), and so does a bound.
    stored = T0 + timedelta(milliseconds=5)
    key = timeline_key(stored, "e")
    assert key >= instant_bound(stored + timedelta(microseconds=700))  # since: still included
    assert key < instant_bound(stored + timedelta(milliseconds=1))  # until: excluded after
    assert not key < instant_bound(stored)  # until at its own instant: excluded
    assert instant_bound(T0.replace(tzinfo=None)) == instant_bound(T0)  # naive means UTC
