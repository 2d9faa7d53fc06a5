"""gRPC size limits: one set of numbers, derived from the contract's largest event."""

from __future__ import annotations

from tsunagu.contracts.limits import MAX_EVENT_BYTES
from tsunagu.rpc import (
    ENVELOPE_BYTES,
    MAX_BATCH_REQUEST_BYTES,
    MAX_RESPONSE_BYTES,
    batch_request_bytes,
)


def test_a_small_item_limit_receives_exactly_that_many_of_the_largest_events() -> None:
    assert batch_request_bytes(2, MAX_EVENT_BYTES) == 2 * MAX_EVENT_BYTES + ENVELOPE_BYTES


def test_a_large_item_limit_is_capped_by_bytes_so_batches_of_small_events_still_fit() -> None:
    # 1,000 chat messages of a few hundred bytes are one ordinary batch; 1,000 of the largest
    # events (500 MiB) must never be read into memory.
    assert batch_request_bytes(1000, MAX_EVENT_BYTES) == MAX_BATCH_REQUEST_BYTES
    assert 1000 * 2048 < MAX_BATCH_REQUEST_BYTES < 64 * 1024 * 1024


def test_a_response_holds_a_page_of_the_largest_events() -> None:
    assert MAX_RESPONSE_BYTES >= 16 * MAX_EVENT_BYTES
