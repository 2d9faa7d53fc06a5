"""The timeline.updated codec: round trip, the entry dropped when too large, hostile payloads."""

from __future__ import annotations

import pytest

from tsunagu.bus.notices import (
    MAX_NOTICE_BYTES,
    customer_subject,
    decode_notice,
    encode_notice,
    tenant_subject,
)
from tsunagu.v1 import interaction_pb2, notices_pb2, timeline_pb2


def _notice(text: str) -> notices_pb2.TimelineUpdated:
    entry = timeline_pb2.TimelineEntry(
        customer_id="cus_1",
        interaction=interaction_pb2.Interaction(
            event_id="e-1", tenant="acme", content=interaction_pb2.Content(text=text)
        ),
    )
    return notices_pb2.TimelineUpdated(
        tenant="acme",
        customer_id="cus_1",
        event_id="e-1",
        channel=interaction_pb2.CHANNEL_CHAT,
        case_id="case_1",
        case_status=timeline_pb2.CASE_STATUS_OPEN,
        entry=entry,
    )


def test_notice_round_trips_with_its_entry() -> None:
    decoded = decode_notice(encode_notice(_notice("hello")))
    assert decoded is not None
    assert decoded.entry.interaction.content.text == "hello"
    assert decoded.case_status == timeline_pb2.CASE_STATUS_OPEN


def test_entry_too_large_for_the_bus_is_left_out_and_the_notice_still_goes() -> None:
    data = encode_notice(_notice("x" * (MAX_NOTICE_BYTES + 10)))
    assert len(data) <= MAX_NOTICE_BYTES
    decoded = decode_notice(data)
    assert decoded is not None
    assert decoded.event_id == "e-1"
    assert not decoded.HasField("entry")


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xff\xff",  # not protobuf
        b'{"tenant": "acme"}',  # the old JSON notices
        notices_pb2.TimelineUpdated(tenant="acme", customer_id="cus_1").SerializeToString(),
        notices_pb2.TimelineUpdated(
            tenant="acme.>", customer_id="cus_1", event_id="e"
        ).SerializeToString(),
        b"\x0a" + b"\x80" * 10,  # truncated length prefix
        b"\x00" * (MAX_NOTICE_BYTES + 1),
    ],
)
def test_hostile_payloads_are_ignored(payload: bytes) -> None:
    assert decode_notice(payload) is None


def test_subjects_refuse_ids_that_would_widen_them() -> None:
    assert customer_subject("acme", "cus_1") == "timeline.updated.acme.cus_1"
    assert tenant_subject("acme") == "timeline.updated.acme.>"
    for bad in ("a.b", "*", ">", "", "a b"):
        with pytest.raises(ValueError, match="single NATS subject token"):
            customer_subject("acme", bad)
        with pytest.raises(ValueError, match="single NATS subject token"):
            tenant_subject(bad)
