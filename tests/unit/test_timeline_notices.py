"""What the timeline announces for a recorded event: one contract notice per customer touched."""

from __future__ import annotations

from datetime import UTC, datetime

from services.timeline.interactions.entries import entry_to_proto, interaction_document
from services.timeline.notices import notices_of
from services.timeline.recorder import Recorded
from tests import builders
from tsunagu.bus.notices import decode_notice, encode_notice
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1 import timeline_pb2

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)


def recorded(**outcome: object) -> Recorded:
    chat = builders.chat("acme", at=T0)
    doc = interaction_document(
        chat,
        customer_id="cus_1",
        occurred_at=T0,
        recorded_at=T0,
        identifiers=[],
        case_id="case_1",
    )
    fields: dict[str, object] = {
        "case_id": "case_1",
        "case_status": "escalated",
        "entry": entry_to_proto(doc),
        **outcome,
    }
    return Recorded(chat.event_id, "acme", "cus_1", False, **fields)  # type: ignore[arg-type]


def test_the_customer_hears_the_event_with_its_stored_entry_and_case() -> None:
    outcome = recorded()
    [notice] = notices_of(outcome)
    assert (notice.tenant, notice.customer_id, notice.event_id) == (
        "acme",
        "cus_1",
        outcome.event_id,
    )
    assert (notice.channel, notice.kind) == (pb.CHANNEL_CHAT, pb.KIND_MESSAGE)
    assert notice.case_status == timeline_pb2.CASE_STATUS_ESCALATED
    assert notice.entry.interaction.event_id == outcome.event_id
    assert notice.entry.case_id == "case_1"
    decoded = decode_notice(encode_notice(notice))
    assert decoded is not None
    assert decoded.entry.customer_id == "cus_1"


def test_merged_and_restored_customers_hear_it_with_whom_to_follow() -> None:
    outcome = recorded(merged_ids=["cus_2"], restored_ids=["cus_3"])
    own, merged, restored = notices_of(outcome)
    assert own.customer_id == "cus_1"
    assert list(own.merged_ids) == ["cus_2"]
    assert (merged.customer_id, merged.merged_into) == ("cus_2", "cus_1")
    assert (restored.customer_id, restored.split_from) == ("cus_3", "cus_1")


def test_a_duplicate_is_not_announced_again() -> None:
    assert notices_of(Recorded("e1", "acme", "cus_1", duplicate=True)) == []
