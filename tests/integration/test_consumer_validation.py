"""The timeline's consumer re-checks the write-path contract on every message it takes.

Every message here is published straight onto JetStream, bypassing ingestion and the gateway
(which check the same contract): what a buggy or hostile producer can put on the stream.
A message that breaks the contract must land on `INTERACTIONS_DLQ` with its stable reason code
in `Tsunagu-Dead-Letter-Reason`, must never be stored, and must not keep the good messages of
its burst (fetched in the same batches) from being stored.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tests import builders
from tests.integration.test_consumer_faults import (
    ERROR_HEADER,
    SEQUENCE_HEADER,
    Bus,
    header,
)
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1 import timeline_pb2

REASON_HEADER = "Tsunagu-Dead-Letter-Reason"
VISITOR = "visitor-contract"


@dataclass(frozen=True)
class Hostile:
    """A message that breaks the contract, where it is published, and the expected code."""

    name: str
    interaction: pb.Interaction
    reason: str
    subject_suffix: str = "chat"


def _chat(tenant: str, **changes: object) -> pb.Interaction:
    interaction = builders.chat(tenant, visitor=VISITOR)
    for name, value in changes.items():
        setattr(interaction, name, value)
    return interaction


def _text(tenant: str, text: str) -> pb.Interaction:
    interaction = _chat(tenant)
    interaction.content.text = text
    return interaction


def _far_future(tenant: str) -> pb.Interaction:
    interaction = _chat(tenant)
    interaction.occurred_at.FromDatetime(datetime(9999, 12, 31, tzinfo=UTC))
    return interaction


def _control_in_identifier(tenant: str) -> pb.Interaction:
    interaction = _chat(tenant)
    interaction.identifiers.add(kind=pb.IDENTIFIER_KIND_EMAIL, value="taro\x07@example.jp")
    return interaction


def _agent_note_on_chat(tenant: str, kind: pb.Kind.ValueType) -> pb.Interaction:
    interaction = _chat(tenant, kind=kind, direction=pb.DIRECTION_INTERNAL)
    interaction.agent_action.customer_id = f"cus_{uuid.uuid4().hex}"
    interaction.agent_action.note.text = "written on the chat subject"
    return interaction


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _two_customers() -> list[str]:
    return [_id("cus"), _id("cus")]


def _claiming_chat(interaction: pb.Interaction) -> pb.Interaction:
    interaction.channel = pb.CHANNEL_CHAT
    return interaction


HOSTILE: list[Callable[[str], Hostile]] = [
    lambda t: Hostile("900 KB text", _text(t, "a" * 900_000), "text_too_large"),
    lambda t: Hostile("year 9999", _far_future(t), "occurred_at_invalid"),
    lambda t: Hostile("NUL in text", _text(t, "late delivery\x00"), "control_characters"),
    lambda t: Hostile("BEL in an id", _control_in_identifier(t), "control_characters"),
    lambda t: Hostile("5,000-char event id", _chat(t, event_id="e" * 5000), "event_id_invalid"),
    lambda t: Hostile(
        "upper-case UUID", _chat(t, event_id=str(uuid.uuid4()).upper()), "event_id_invalid"
    ),
    # A dot in the tenant makes a subject inside this tenant's filter that names another one.
    lambda t: Hostile(
        "dotted tenant", _chat(f"{t}.evil"), "tenant_invalid", subject_suffix="evil.chat"
    ),
    lambda t: Hostile("channel 99", _chat(t, channel=99), "channel_invalid"),
    lambda t: Hostile("note on chat", _agent_note_on_chat(t, pb.KIND_NOTE), "kind_invalid"),
    lambda t: Hostile(
        "agent action detail on a chat message",
        _agent_note_on_chat(t, pb.KIND_MESSAGE),
        "detail_invalid",
    ),
    # Identity actions are the agent desk's alone (only the gateway may publish there): on a
    # chat subject a forged merge, split or dismissal is refused, whichever channel it claims.
    lambda t: Hostile(
        "merge on chat", builders.merge_customers(t, _two_customers()), "subject_mismatch"
    ),
    lambda t: Hostile("split on chat", builders.split_merge(t, _id("mrg")), "subject_mismatch"),
    lambda t: Hostile(
        "dismissal on chat", builders.dismiss_suggestion(t, _id("sug")), "subject_mismatch"
    ),
    lambda t: Hostile(
        "merge claiming chat",
        _claiming_chat(builders.merge_customers(t, _two_customers())),
        "kind_invalid",
    ),
]


async def test_contract_breaches_are_dead_lettered_with_their_reason_and_good_ones_stored(
    bus: Bus,
) -> None:
    hostile = [make(bus.tenant) for make in HOSTILE]
    good = [builders.chat(bus.tenant, visitor=VISITOR) for _ in range(len(hostile) + 1)]
    pending = []
    # Interleaved and published without waiting, so that good and bad share fetch batches.
    for index, bad in enumerate(hostile):
        pending.append(
            await bus.js.publish_async(bus.chat_subject, good[index].SerializeToString())
        )
        subject = f"interactions.{bus.tenant}.{bad.subject_suffix}"
        pending.append(await bus.js.publish_async(subject, bad.interaction.SerializeToString()))
    pending.append(await bus.js.publish_async(bus.chat_subject, good[-1].SerializeToString()))
    acks = await asyncio.gather(*pending)
    bad_sequences = [ack.seq for ack in acks[1::2]]

    owners = await bus.recorded([g.event_id for g in good])

    dead = []
    for bad in hostile:
        dead += await bus.dead_letters(f"interactions.{bus.tenant}.{bad.subject_suffix}")
    by_sequence = {header(d, SEQUENCE_HEADER): d for d in dead}
    assert sorted(by_sequence) == sorted(str(s) for s in bad_sequences)
    for bad, sequence in zip(hostile, bad_sequences, strict=True):
        letter = by_sequence[str(sequence)]
        assert header(letter, REASON_HEADER) == bad.reason, bad.name
        assert header(letter, ERROR_HEADER), bad.name
        assert letter.data == bad.interaction.SerializeToString(), bad.name

    # Nothing of the hostile messages is readable: every good one went to one customer, and
    # that customer's timeline holds exactly the good ones.
    [customer_id] = set(owners.values())
    page = await bus.timeline.ListInteractions(
        timeline_pb2.ListInteractionsRequest(
            tenant=bus.tenant, customer_id=customer_id, page_size=200
        )
    )
    assert {e.interaction.event_id for e in page.entries} == {g.event_id for g in good}
    lookup_ids = [b.interaction.event_id for b in hostile if len(b.interaction.event_id) < 256]
    assert await bus.stored(lookup_ids) == set()


async def test_dead_letters_of_unreadable_or_misrouted_messages_carry_a_reason_too(
    bus: Bus,
) -> None:
    garbage = b"\xff\xfe not a protobuf"
    forged = builders.chat(f"{bus.tenant}-victim")
    await bus.publish(garbage)
    await bus.publish(forged.SerializeToString())
    good = builders.chat(bus.tenant)
    await bus.publish(good.SerializeToString())

    await bus.recorded([good.event_id])
    assert [header(d, REASON_HEADER) for d in await bus.dead_letters()] == [
        "malformed",
        "subject_mismatch",
    ]


async def test_an_event_within_the_clock_skew_is_stored(bus: Bus) -> None:
    # The contract's future bound is a skew allowance, not "never after now".
    ahead = builders.chat(bus.tenant, at=datetime.now(UTC) + timedelta(minutes=2))
    await bus.publish(ahead.SerializeToString())

    await bus.recorded([ahead.event_id])
    assert await bus.dead_letters() == []
