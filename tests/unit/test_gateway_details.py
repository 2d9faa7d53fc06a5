"""Interaction details and agent actions read from the proto by their descriptors."""

from __future__ import annotations

import pytest
import strawberry

from gateway.details import (
    AgentActionDetail,
    CallDetail,
    CancellationRequestAction,
    HandoffAction,
    MergeCustomersAction,
    WebFormDetail,
    detail_from_proto,
)
from gateway.enums import CancellationReason, Channel
from gateway.from_proto import oneof_reader, read
from tsunagu.v1 import interaction_pb2 as pb


def test_every_detail_and_action_of_the_contract_has_a_graphql_type() -> None:
    # The oneofs as the descriptors list them: a member added to the proto without its
    # GraphQL type fails this (and the gateway's start), not an agent's query.
    for descriptor, oneof in (
        (pb.Interaction.DESCRIPTOR, "detail"),
        (pb.AgentActionDetail.DESCRIPTOR, "action"),
    ):
        for field in descriptor.oneofs_by_name[oneof].fields:
            assert field.message_type is not None
            message = getattr(pb, field.message_type.name)()
            converted: object = read(message, _graphql_type(field.message_type.name))
            assert type(converted).__name__ == field.message_type.name


def _graphql_type(name: str) -> type:
    import gateway.details

    found: type = getattr(gateway.details, name)
    return found


def test_a_call_reads_every_field_and_zero_duration_as_not_measured() -> None:
    call = pb.CallDetail(
        call_id="call-42",
        leg_id="leg-1",
        from_number="+819012345678",
        to_number="+81312345678",
        queue="billing",
        transferred_to="retention",
    )

    detail = detail_from_proto(pb.Interaction(call=call))

    assert detail == CallDetail(
        call_id="call-42",
        leg_id="leg-1",
        from_number="+819012345678",
        to_number="+81312345678",
        duration_seconds=None,
        queue="billing",
        recording_uri=None,
        transcript=None,
        end_reason=None,
        transferred_to="retention",
    )
    call.duration_seconds = 312
    assert detail_from_proto(pb.Interaction(call=call)).duration_seconds == 312  # type: ignore[union-attr]


def test_repeated_nested_messages_enums_and_ids_are_converted() -> None:
    form = pb.WebFormDetail(form_id="contact", fields=[pb.FormField(name="plan", value="monthly")])
    merge = pb.AgentActionDetail(
        case_id="case-1",
        merge_customers=pb.MergeCustomersAction(customer_ids=["c-1", "c-2"], reason="same"),
    )
    handoff = pb.HandoffAction(to_channel=pb.CHANNEL_VOICE, open_questions=["Which plan?"])
    request = pb.CancellationRequestAction(reason=pb.CANCELLATION_REASON_OTHER)

    read_form = detail_from_proto(pb.Interaction(web_form=form))
    read_merge = detail_from_proto(pb.Interaction(agent_action=merge))

    assert isinstance(read_form, WebFormDetail)
    assert [(field.name, field.value) for field in read_form.fields] == [("plan", "monthly")]
    assert read_form.page_url is None
    assert read_merge == AgentActionDetail(
        case_id="case-1",
        customer_id=None,
        action=MergeCustomersAction(
            customer_ids=[strawberry.ID("c-1"), strawberry.ID("c-2")],
            reason="same",
            suggestion_id=None,
        ),
    )
    assert read(handoff, HandoffAction) == HandoffAction(
        to_channel=Channel.VOICE,
        to_queue=None,
        to_agent=None,
        summary=None,
        open_questions=["Which plan?"],
    )
    assert read(request, CancellationRequestAction) == CancellationRequestAction(
        reason=CancellationReason.OTHER, reason_detail=None
    )
    assert detail_from_proto(pb.Interaction()) is None


@strawberry.type
class ChatDetail:
    session_id: str | None
    shoe_size: int


def test_a_graphql_field_the_proto_lacks_fails_when_the_reader_is_built() -> None:
    with pytest.raises(TypeError, match="shoe_size"):
        oneof_reader(pb.Interaction.DESCRIPTOR, "detail", ChatDetail)
