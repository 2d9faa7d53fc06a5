"""Card numbers in free text never leave ingestion; ids, identifiers and other numbers do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.pipeline import IngestPolicy, prepare
from services.ingest.redaction import luhn_valid, redact_pans
from tsunagu.v1 import interaction_pb2 as pb

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
VISA = "4111111111111111"
AMEX = "378282246310005"  # 15 digits
MASTERCARD_SPACED = "5555 5555 5555 4444"


@pytest.mark.parametrize("number", [VISA, AMEX, "5555555555554444", "6011111111111117"])
def test_known_test_card_numbers_pass_luhn(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"my card is {VISA}.", "my card is [card ****1111]."),
        (f"カード番号は{MASTERCARD_SPACED}です", "カード番号は[card ****4444]です"),
        ("4111-1111-1111-1111 please", "[card ****1111] please"),
        (f"amex {AMEX}", "amex [card ****0005]"),
        (f"{VISA} 0312345678", "[card ****1111] 0312345678"),
        (f"call 0312345678 {VISA}", "call 0312345678 [card ****1111]"),
        (f"{VISA},{AMEX}", "[card ****1111],[card ****0005]"),
    ],
)
def test_card_numbers_are_redacted_keeping_the_last_four(text: str, expected: str) -> None:
    assert redact_pans(text)[0] == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111112 is late",  # fails Luhn
        "call +81 90 1234 5678",  # a phone number
        "tracking 123456789012",  # too short for a card
        "id 41111111111111111111111",  # far too long, one run
        "on 2025-06-01 at 12:00",
        "",
    ],
)
def test_other_numbers_are_left_alone(text: str) -> None:
    assert redact_pans(text) == (text, 0)


def _inbound(channel: pb.Channel.ValueType, kind: pb.Kind.ValueType) -> pb.Interaction:
    interaction = pb.Interaction(
        event_id="01ARZ3NDEKTSV4RRFFQ69G5FAV",
        tenant="acme",
        channel=channel,
        kind=kind,
        direction=pb.DIRECTION_INBOUND,
    )
    interaction.occurred_at.FromDatetime(NOW - timedelta(minutes=1))
    return interaction


def _chat(text: str) -> pb.Interaction:
    interaction = _inbound(pb.CHANNEL_CHAT, pb.KIND_MESSAGE)
    interaction.chat.session_id = "sess-1"
    interaction.identifiers.add(kind=pb.IDENTIFIER_KIND_CHAT_VISITOR, value="vis-1")
    interaction.content.text = text
    interaction.content.attachments.add(filename=f"card {VISA}.png", uri="s3://b/k")
    return interaction


def test_prepare_redacts_cards_in_every_free_text_field_of_the_event() -> None:
    prepared = prepare(
        _chat(f"pay with {VISA}"), policy=IngestPolicy(channel=pb.CHANNEL_CHAT), now=NOW
    )

    assert prepared.content.text == "pay with [card ****1111]"
    assert prepared.content.attachments[0].filename == "card [card ****1111].png"
    assert VISA.encode() not in prepared.SerializeToString()


def test_prepare_redacts_form_values_and_the_text_built_from_them() -> None:
    interaction = _inbound(pb.CHANNEL_WEB, pb.KIND_FORM_SUBMISSION)
    interaction.web_form.form_id = "refund"
    interaction.web_form.fields.add(name="email", value="taro@example.jp")
    interaction.web_form.fields.add(name="card", value=MASTERCARD_SPACED)

    prepared = prepare(interaction, policy=IngestPolicy(channel=pb.CHANNEL_WEB), now=NOW)

    assert prepared.web_form.fields[1].value == "[card ****4444]"
    assert "card: [card ****4444]" in prepared.content.text
    assert b"5555" not in prepared.SerializeToString().replace(b"****4444", b"")


def test_email_bodies_are_redacted_but_ids_and_addresses_are_not() -> None:
    interaction = _inbound(pb.CHANNEL_EMAIL, pb.KIND_EMAIL)
    message_id = f"<{VISA}@mail.example.jp>"
    interaction.email.CopyFrom(
        pb.EmailDetail(
            message_id=message_id,
            from_address="taro@example.jp",
            subject=f"card {VISA}",
            text_body=f"Please refund {AMEX}",
        )
    )

    prepared = prepare(interaction, policy=IngestPolicy(channel=pb.CHANNEL_EMAIL), now=NOW)

    assert prepared.email.subject == "card [card ****1111]"
    assert AMEX not in prepared.email.text_body
    assert prepared.email.message_id == message_id
