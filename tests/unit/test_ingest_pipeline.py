"""Unit tests of the ingestion pipeline: validation and per-channel normalisation."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.channels.email import html_to_text
from services.ingest.pipeline import IngestPolicy, prepare
from tsunagu.contracts import BUS_LIMITS, ContractViolation, Reason, check_interaction
from tsunagu.v1 import interaction_pb2 as pb

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ULID_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
UUID_ID = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"

POLICIES = {
    channel: IngestPolicy(channel=channel)
    for channel in (
        pb.CHANNEL_CHAT,
        pb.CHANNEL_VOICE,
        pb.CHANNEL_EMAIL,
        pb.CHANNEL_SMS,
        pb.CHANNEL_SOCIAL,
        pb.CHANNEL_WEB,
    )
}


def _identifier(kind: int, value: str, network: str = "", verified: bool = False) -> pb.Identifier:
    return pb.Identifier(
        kind=pb.IdentifierKind.ValueType(kind), value=value, network=network, verified=verified
    )


def _base(channel: int, kind: int, direction: int = pb.DIRECTION_INBOUND) -> pb.Interaction:
    interaction = pb.Interaction(
        event_id=ULID_ID,
        tenant="acme",
        channel=pb.Channel.ValueType(channel),
        kind=pb.Kind.ValueType(kind),
        direction=pb.Direction.ValueType(direction),
    )
    interaction.occurred_at.FromDatetime(NOW - timedelta(minutes=1))
    return interaction


def chat_event(direction: int = pb.DIRECTION_INBOUND) -> pb.Interaction:
    interaction = _base(pb.CHANNEL_CHAT, pb.KIND_MESSAGE, direction)
    interaction.chat.CopyFrom(
        pb.ChatDetail(session_id="sess-1", page_url="https://shop.example.jp/cart")
    )
    interaction.identifiers.append(_identifier(pb.IDENTIFIER_KIND_CHAT_VISITOR, " Vis-ABC "))
    interaction.content.text = "注文した商品がまだ届きません"
    return interaction


def call_event(direction: int = pb.DIRECTION_INBOUND) -> pb.Interaction:
    interaction = _base(pb.CHANNEL_VOICE, pb.KIND_CALL_STARTED, direction)
    interaction.call.CopyFrom(
        pb.CallDetail(call_id="call-42", from_number="090-1234-5678", to_number="03-1234-5678")
    )
    return interaction


def email_event(direction: int = pb.DIRECTION_INBOUND) -> pb.Interaction:
    interaction = _base(pb.CHANNEL_EMAIL, pb.KIND_EMAIL, direction)
    interaction.email.CopyFrom(
        pb.EmailDetail(
            message_id="<m3@mail.example.jp>",
            from_address="Taro@Example.JP",
            to_addresses=["support@shop.example.jp"],
            subject="返品について",
            text_body="返品したいです。",
        )
    )
    return interaction


def sms_event(direction: int = pb.DIRECTION_INBOUND) -> pb.Interaction:
    interaction = _base(pb.CHANNEL_SMS, pb.KIND_MESSAGE, direction)
    interaction.sms.CopyFrom(pb.SmsDetail(from_number="090-1234-5678", to_number="+81 3-1234-5678"))
    interaction.content.text = "STOP"
    return interaction


def social_event(direction: int = pb.DIRECTION_INBOUND) -> pb.Interaction:
    interaction = _base(pb.CHANNEL_SOCIAL, pb.KIND_MESSAGE, direction)
    interaction.social.CopyFrom(pb.SocialDetail(network="X", handle="@Taro_Y"))
    interaction.content.text = "hello"
    return interaction


def web_event(direction: int = pb.DIRECTION_INBOUND) -> pb.Interaction:
    interaction = _base(pb.CHANNEL_WEB, pb.KIND_FORM_SUBMISSION, direction)
    interaction.web_form.form_id = "contact"
    interaction.web_form.fields.add(name=" Name ", value="山田 太郎")
    interaction.web_form.fields.add(name="E-Mail", value=" Taro@Example.JP ")
    interaction.web_form.fields.add(name="TEL", value="０９０－１２３４－５６７８")
    interaction.web_form.fields.add(name="message", value="")
    return interaction


FACTORIES: dict[str, Callable[..., pb.Interaction]] = {
    "chat": chat_event,
    "voice": call_event,
    "email": email_event,
    "sms": sms_event,
    "social": social_event,
    "web": web_event,
}


def run(interaction: pb.Interaction, policy: IngestPolicy | None = None) -> pb.Interaction:
    return prepare(interaction, policy=policy or POLICIES[interaction.channel], now=NOW)


def rejection(interaction: pb.Interaction, policy: IngestPolicy | None = None) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        run(interaction, policy)
    return caught.value


def identifier_pairs(interaction: pb.Interaction) -> list[tuple[int, str, str]]:
    return [(i.kind, i.network, i.value) for i in interaction.identifiers]


# --- every channel -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "conversation_ref"),
    [
        ("chat", "chat:sess-1"),
        ("voice", "call:call-42"),
        ("email", "email:<m3@mail.example.jp>"),
        ("sms", "sms:+819012345678"),
        ("social", "social:x:taro_y"),
        ("web", ""),  # a form submission starts no conversation of its own
    ],
)
def test_each_channel_accepts_its_happy_path(name: str, conversation_ref: str) -> None:
    result = run(FACTORIES[name]())
    assert result.event_id == ULID_ID
    assert result.actor.type == pb.ACTOR_TYPE_CUSTOMER
    assert result.conversation_ref == conversation_ref
    assert result.identifiers


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_prepare_returns_a_copy_and_never_mutates_its_input(name: str) -> None:
    interaction = FACTORIES[name]()
    interaction.event_id = ULID_ID.lower()
    before = interaction.SerializeToString(deterministic=True)
    result = run(interaction)
    assert interaction.SerializeToString(deterministic=True) == before
    assert result is not interaction
    assert result != interaction


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_rejected_input_is_not_mutated_either(name: str) -> None:
    interaction = FACTORIES[name]()
    interaction.identifiers.append(_identifier(pb.IDENTIFIER_KIND_EMAIL, "not an address"))
    before = interaction.SerializeToString(deterministic=True)
    rejection(interaction)
    assert interaction.SerializeToString(deterministic=True) == before


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_preparing_a_prepared_interaction_changes_nothing(name: str) -> None:
    once = run(FACTORIES[name]())
    assert run(once) == once


# --- event id, tenant, channel, enums ------------------------------------------------------


def test_ulid_event_id_is_stored_upper_case() -> None:
    interaction = chat_event()
    interaction.event_id = ULID_ID.lower()
    assert run(interaction).event_id == ULID_ID


def test_uuid_event_id_of_any_version_is_stored_lower_case() -> None:
    for event_id in (
        UUID_ID,
        "C9BF9E57-1685-4C89-BAFB-FF5AF830BE8A",
        "01890A5D-AC96-774B-BCCE-B302099A8057",
    ):
        interaction = chat_event()
        interaction.event_id = event_id
        assert run(interaction).event_id == event_id.lower()


@pytest.mark.parametrize(
    "event_id",
    [
        "",
        "not-an-id",
        "3f2504e04f8911d39a0c0305e82c3301",  # UUID without hyphens
        "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}",
        "3f2504e0-4f89-11d3-9a0c-0305e82c330",
        "00000000-0000-0000-0000-000000000000",
        "00000000000000000000000000",
        "01ARZ3NDEKTSV4RRFFQ69G5FAU",  # U is not Crockford base32
        "81ARZ3NDEKTSV4RRFFQ69G5FAV",  # overflows 128 bits
        "01ARZ3NDEKTSV4RRFFQ69G5FAVX",
        " " + ULID_ID,
    ],
)
def test_bad_event_id_is_rejected(event_id: str) -> None:
    interaction = chat_event()
    interaction.event_id = event_id
    assert rejection(interaction).field == "event_id"


@pytest.mark.parametrize(
    "tenant",
    ["", "Acme", "-acme", "_acme", "ac me", "acme.prod", "acme*", "a" * 64, "テナント", "acme\n"],
)
def test_bad_tenant_is_rejected(tenant: str) -> None:
    interaction = chat_event()
    interaction.tenant = tenant
    assert rejection(interaction).field == "tenant"


@pytest.mark.parametrize("tenant", ["a", "acme", "acme-jp_2", "0shop", "a" * 63])
def test_tenant_that_fits_a_subject_token_is_accepted(tenant: str) -> None:
    interaction = chat_event()
    interaction.tenant = tenant
    assert run(interaction).tenant == tenant


def test_event_of_another_channel_is_rejected_naming_both_channels() -> None:
    error = rejection(call_event(), POLICIES[pb.CHANNEL_CHAT])
    assert error.field == "channel"
    assert "voice" in error.reason
    assert "accepts chat only" in error.reason


@pytest.mark.parametrize(
    ("channel", "named"),
    [
        (pb.CHANNEL_UNSPECIFIED, "unspecified channel"),
        (pb.CHANNEL_AGENT_DESK, "agent_desk"),
        (999, "unknown channel 999"),
    ],
)
def test_unspecified_agent_desk_or_unknown_channel_is_rejected_naming_it_one_way(
    channel: int, named: str
) -> None:
    interaction = chat_event()
    interaction.channel = pb.Channel.ValueType(channel)
    error = rejection(interaction, POLICIES[pb.CHANNEL_CHAT])
    assert (error.field, error.code) == ("channel", Reason.CHANNEL_INVALID)
    assert error.reason == f"got {named}: this service accepts chat only"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", pb.KIND_UNSPECIFIED),
        ("kind", 999),
        ("direction", pb.DIRECTION_UNSPECIFIED),
        ("direction", 999),
    ],
)
def test_unspecified_or_unknown_enum_number_is_rejected(field: str, value: int) -> None:
    interaction = chat_event()
    setattr(interaction, field, value)
    error = rejection(interaction)
    assert error.field == field
    if value:
        assert str(value) in error.reason


def test_unknown_enum_number_survives_the_wire_and_is_still_rejected() -> None:
    interaction = chat_event()
    interaction.kind = pb.Kind.ValueType(999)
    parsed = pb.Interaction.FromString(interaction.SerializeToString())
    assert parsed.kind == 999
    assert rejection(parsed).field == "kind"


def test_unknown_actor_type_is_rejected() -> None:
    interaction = chat_event()
    interaction.actor.type = pb.ActorType.ValueType(42)
    assert rejection(interaction).field == "actor.type"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("chat", pb.KIND_NOTE),
        ("chat", pb.KIND_CALL_STARTED),
        ("voice", pb.KIND_MESSAGE),
        ("email", pb.KIND_MESSAGE),
        ("sms", pb.KIND_EMAIL),
        ("social", pb.KIND_HANDOFF),
        ("web", pb.KIND_MESSAGE),
    ],
)
def test_kind_that_does_not_fit_the_channel_is_rejected(name: str, kind: int) -> None:
    interaction = FACTORIES[name]()
    interaction.kind = pb.Kind.ValueType(kind)
    error = rejection(interaction)
    assert error.field == "kind"
    assert pb.Kind.Name(pb.Kind.ValueType(kind)) in error.reason


@pytest.mark.parametrize(
    "kind", [pb.KIND_CALL_STARTED, pb.KIND_CALL_TRANSFERRED, pb.KIND_CALL_ENDED]
)
def test_every_call_kind_is_accepted_on_voice(kind: int) -> None:
    interaction = call_event()
    interaction.kind = pb.Kind.ValueType(kind)
    assert run(interaction).kind == kind


# --- occurred_at ---------------------------------------------------------------------------


def test_missing_occurred_at_is_rejected() -> None:
    interaction = chat_event()
    interaction.ClearField("occurred_at")
    assert rejection(interaction).field == "occurred_at"


def test_occurred_at_beyond_the_clock_skew_is_rejected() -> None:
    interaction = chat_event()
    interaction.occurred_at.FromDatetime(NOW + timedelta(minutes=10, seconds=1))
    assert rejection(interaction).field == "occurred_at"


def test_occurred_at_slightly_in_the_future_is_accepted() -> None:
    interaction = chat_event()
    interaction.occurred_at.FromDatetime(NOW + timedelta(minutes=10))
    assert run(interaction).occurred_at == interaction.occurred_at


def test_clock_skew_comes_from_the_policy() -> None:
    interaction = chat_event()
    interaction.occurred_at.FromDatetime(NOW + timedelta(minutes=1))
    strict = IngestPolicy(channel=pb.CHANNEL_CHAT, max_clock_skew=timedelta(seconds=30))
    assert rejection(interaction, strict).field == "occurred_at"


@pytest.mark.parametrize(
    "moment",
    [datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)],
)
def test_occurred_at_before_2000_is_rejected(moment: datetime) -> None:
    interaction = chat_event()
    interaction.occurred_at.FromDatetime(moment)
    assert rejection(interaction).field == "occurred_at"


def test_occurred_at_with_out_of_range_nanos_is_rejected() -> None:
    interaction = chat_event()
    interaction.occurred_at.nanos = -1
    assert rejection(interaction).field == "occurred_at"


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        prepare(chat_event(), policy=POLICIES[pb.CHANNEL_CHAT], now=datetime(2025, 6, 1))  # noqa: DTZ001


# --- actor ---------------------------------------------------------------------------------


def test_unspecified_actor_defaults_to_customer_inbound_and_agent_outbound() -> None:
    assert run(chat_event(pb.DIRECTION_INBOUND)).actor.type == pb.ACTOR_TYPE_CUSTOMER
    assert run(chat_event(pb.DIRECTION_OUTBOUND)).actor.type == pb.ACTOR_TYPE_AGENT


def test_explicit_actor_is_kept() -> None:
    interaction = chat_event()
    interaction.actor.type = pb.ACTOR_TYPE_BOT
    interaction.actor.id = "faq-bot"
    result = run(interaction)
    assert (result.actor.type, result.actor.id) == (pb.ACTOR_TYPE_BOT, "faq-bot")


# --- detail oneof and required detail fields ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("chat", "chat"),
        ("voice", "call"),
        ("email", "email"),
        ("sms", "sms"),
        ("social", "social"),
        ("web", "web_form"),
    ],
)
def test_missing_channel_detail_is_rejected(name: str, field: str) -> None:
    interaction = FACTORIES[name]()
    interaction.ClearField("detail")
    assert rejection(interaction).field == field


def test_detail_of_another_channel_is_rejected() -> None:
    interaction = chat_event()
    interaction.call.call_id = "call-1"
    error = rejection(interaction)
    assert error.field == "call"
    assert "chat" in error.reason


def test_agent_action_detail_is_not_accepted_by_channel_ingestion() -> None:
    interaction = chat_event()
    interaction.agent_action.note.text = "called back"
    assert rejection(interaction).field == "agent_action"


@pytest.mark.parametrize(
    ("name", "detail", "field"),
    [
        ("voice", "call", "call_id"),
        ("email", "email", "message_id"),
        ("email", "email", "from_address"),
        ("sms", "sms", "from_number"),
        ("social", "social", "network"),
        ("social", "social", "handle"),
        ("web", "web_form", "form_id"),
    ],
)
@pytest.mark.parametrize("blank", ["", "   "])
def test_missing_required_detail_field_is_rejected(
    name: str, detail: str, field: str, blank: str
) -> None:
    interaction = FACTORIES[name]()
    setattr(getattr(interaction, detail), field, blank)
    assert rejection(interaction).field == f"{detail}.{field}"


# --- identifiers ---------------------------------------------------------------------------


def test_identifier_values_are_replaced_by_their_normalised_form() -> None:
    interaction = chat_event()
    del interaction.identifiers[:]
    interaction.identifiers.extend(
        [
            _identifier(pb.IDENTIFIER_KIND_CHAT_VISITOR, " Vis-ABC "),
            _identifier(pb.IDENTIFIER_KIND_EMAIL, " Taro@Example.JP", network="ignored"),
            _identifier(pb.IDENTIFIER_KIND_PHONE, "０９０－１２３４－５６７８"),
            _identifier(pb.IDENTIFIER_KIND_SOCIAL_HANDLE, "@Taro_Y", network="Instagram"),
            _identifier(pb.IDENTIFIER_KIND_EXTERNAL_CRM_ID, "CRM-0001"),
        ]
    )
    assert identifier_pairs(run(interaction)) == [
        (pb.IDENTIFIER_KIND_CHAT_VISITOR, "", "Vis-ABC"),
        (pb.IDENTIFIER_KIND_EMAIL, "", "taro@example.jp"),
        (pb.IDENTIFIER_KIND_PHONE, "", "+819012345678"),
        (pb.IDENTIFIER_KIND_SOCIAL_HANDLE, "instagram", "taro_y"),
        (pb.IDENTIFIER_KIND_EXTERNAL_CRM_ID, "", "CRM-0001"),
    ]


def test_invalid_but_parseable_phone_identifier_is_kept_with_its_stable_value() -> None:
    interaction = chat_event()
    interaction.identifiers.append(_identifier(pb.IDENTIFIER_KIND_PHONE, "123"))
    assert identifier_pairs(run(interaction))[-1] == (pb.IDENTIFIER_KIND_PHONE, "", "+81123")


def test_duplicate_identifiers_are_removed_keeping_the_first_and_any_verification() -> None:
    interaction = chat_event()
    interaction.identifiers.extend(
        [
            _identifier(pb.IDENTIFIER_KIND_EMAIL, "taro@example.jp"),
            _identifier(pb.IDENTIFIER_KIND_CHAT_VISITOR, "Vis-ABC"),
            _identifier(pb.IDENTIFIER_KIND_EMAIL, " TARO@example.jp ", verified=True),
            _identifier(pb.IDENTIFIER_KIND_CHAT_VISITOR, "vis-abc"),  # opaque: case matters
        ]
    )
    result = run(interaction)
    assert identifier_pairs(result) == [
        (pb.IDENTIFIER_KIND_CHAT_VISITOR, "", "Vis-ABC"),
        (pb.IDENTIFIER_KIND_EMAIL, "", "taro@example.jp"),
        (pb.IDENTIFIER_KIND_CHAT_VISITOR, "", "vis-abc"),
    ]
    assert [i.verified for i in result.identifiers] == [False, True, False]


@pytest.mark.parametrize(
    ("identifier", "field"),
    [
        (_identifier(pb.IDENTIFIER_KIND_EMAIL, "taro.example.jp"), "identifiers[1].value"),
        (_identifier(pb.IDENTIFIER_KIND_PHONE, "call me"), "identifiers[1].value"),
        (_identifier(pb.IDENTIFIER_KIND_SOCIAL_HANDLE, "taro"), "identifiers[1].network"),
        (_identifier(pb.IDENTIFIER_KIND_SOCIAL_HANDLE, "", "x"), "identifiers[1].value"),
        (_identifier(pb.IDENTIFIER_KIND_CHAT_LOGIN, "  "), "identifiers[1].value"),
        (_identifier(pb.IDENTIFIER_KIND_UNSPECIFIED, "taro@example.jp"), "identifiers[1].kind"),
        (_identifier(999, "taro@example.jp"), "identifiers[1].kind"),
    ],
)
def test_identifier_that_cannot_be_normalised_is_rejected_by_index(
    identifier: pb.Identifier, field: str
) -> None:
    interaction = chat_event()
    interaction.identifiers.append(identifier)
    assert rejection(interaction).field == field


def test_more_identifiers_than_the_policy_allows_are_rejected() -> None:
    interaction = chat_event()
    del interaction.identifiers[:]
    for index in range(33):
        interaction.identifiers.append(_identifier(pb.IDENTIFIER_KIND_CHAT_VISITOR, f"v{index}"))
    assert rejection(interaction).field == "identifiers"


def test_identifier_bound_also_counts_those_the_channel_adds() -> None:
    interaction = call_event()
    for index in range(32):
        interaction.identifiers.append(_identifier(pb.IDENTIFIER_KIND_EXTERNAL_CRM_ID, f"c{index}"))
    assert rejection(interaction).field == "identifiers"


def test_inbound_customer_interaction_without_identifiers_is_rejected() -> None:
    interaction = chat_event()
    del interaction.identifiers[:]
    assert rejection(interaction).field == "identifiers"


def test_outbound_or_bot_interaction_may_carry_no_identifier() -> None:
    outbound = chat_event(pb.DIRECTION_OUTBOUND)
    del outbound.identifiers[:]
    assert not run(outbound).identifiers
    bot = chat_event()
    bot.actor.type = pb.ACTOR_TYPE_BOT
    del bot.identifiers[:]
    assert not run(bot).identifiers


def test_phone_identifiers_use_the_tenants_region() -> None:
    policy = IngestPolicy(channel=pb.CHANNEL_CHAT, tenant_regions={"us-shop": "US"})
    interaction = chat_event()
    interaction.tenant = "us-shop"
    interaction.identifiers.append(_identifier(pb.IDENTIFIER_KIND_PHONE, "(650) 253-0000"))
    assert identifier_pairs(run(interaction, policy))[-1][2] == "+16502530000"
    assert policy.region_for("us-shop") == "US"
    assert policy.region_for("acme") == "JP"


# --- strings: control characters and sizes ------------------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f"])
def test_control_character_in_text_is_rejected(char: str) -> None:
    interaction = chat_event()
    interaction.content.text = f"hello{char}world"
    assert rejection(interaction).field == "content.text"


def test_tab_and_line_breaks_are_allowed_in_text() -> None:
    interaction = chat_event()
    interaction.content.text = "line 1\r\n\tline 2\n"
    assert run(interaction).content.text == "line 1\r\n\tline 2\n"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda i: setattr(i.chat, "session_id", "s\x00"), "chat.session_id"),
        (lambda i: setattr(i.actor, "display_name", "Taro\x1b[31m"), "actor.display_name"),
        (lambda i: setattr(i.identifiers[0], "value", "v\x00"), "identifiers[0].value"),
        (
            lambda i: i.content.attachments.add(filename="a\x00.pdf"),
            "content.attachments[0].filename",
        ),
    ],
)
def test_control_character_in_any_string_field_is_rejected_with_its_path(
    mutate: Callable[[pb.Interaction], object], field: str
) -> None:
    interaction = chat_event()
    mutate(interaction)
    assert rejection(interaction).field == field


def test_control_character_in_a_repeated_string_names_its_index() -> None:
    interaction = email_event()
    interaction.email.references.extend(["<r1@x>", "<r2@x>\x07"])
    assert rejection(interaction).field == "email.references[1]"


def test_control_character_in_a_form_value_names_its_field() -> None:
    interaction = web_event()
    interaction.web_form.fields[0].value = "bad\x00"
    assert rejection(interaction).field == "web_form.fields[0].value"


def test_text_over_the_byte_limit_is_rejected_counting_utf8_bytes() -> None:
    policy = IngestPolicy(channel=pb.CHANNEL_CHAT, max_text_bytes=30)
    interaction = chat_event()
    interaction.content.text = "あ" * 10  # 10 characters, 30 bytes
    assert run(interaction, policy).content.text == "あ" * 10
    interaction.content.text = "あ" * 11  # 33 bytes
    assert rejection(interaction, policy).field == "content.text"


def test_oversized_transcript_and_mail_bodies_are_rejected() -> None:
    policy = IngestPolicy(channel=pb.CHANNEL_VOICE, max_text_bytes=100)
    call = call_event()
    call.call.transcript = "x" * 101
    assert rejection(call, policy).field == "call.transcript"
    mail_policy = IngestPolicy(channel=pb.CHANNEL_EMAIL, max_text_bytes=100)
    mail = email_event()
    mail.email.html_body = "<p>" + "x" * 100 + "</p>"
    assert rejection(mail, mail_policy).field == "email.html_body"


@pytest.mark.parametrize(
    ("make", "path", "value", "code"),
    [
        (chat_event, "content.text", "x" * (64 * 1024 + 1), Reason.TEXT_TOO_LARGE),
        (email_event, "email.subject", "s" * 999, Reason.FIELD_TOO_LONG),  # RFC 5322 line
        (call_event, "call.call_id", "c" * 257, Reason.FIELD_TOO_LONG),  # ids: 256 bytes
    ],
)
def test_strings_over_their_default_limits_are_rejected(
    make: Callable[[], pb.Interaction], path: str, value: str, code: Reason
) -> None:
    interaction = make()
    holder, _, name = path.rpartition(".")
    setattr(getattr(interaction, holder), name, value)
    error = rejection(interaction)
    assert (error.field, error.code) == (path, code)


def test_serialized_event_over_the_limit_is_rejected() -> None:
    policy = IngestPolicy(channel=pb.CHANNEL_CHAT, max_event_bytes=1024)
    interaction = chat_event()
    interaction.content.text = "x" * 1000
    assert rejection(interaction, policy).field == "interaction"


def test_text_grown_by_normalisation_is_checked_on_the_result() -> None:
    policy = IngestPolicy(channel=pb.CHANNEL_WEB, max_text_bytes=20)
    interaction = web_event()
    del interaction.web_form.fields[:]
    interaction.web_form.fields.add(name="first", value="x" * 15)
    interaction.web_form.fields.add(name="second", value="y" * 15)
    interaction.web_form.fields.add(name="email", value="taro@example.jp")
    assert rejection(interaction, policy).field == "content.text"


# --- chat ----------------------------------------------------------------------------------


def test_chat_conversation_defaults_to_the_session() -> None:
    assert run(chat_event()).conversation_ref == "chat:sess-1"


def test_chat_keeps_the_conversation_ref_it_was_given() -> None:
    interaction = chat_event()
    interaction.conversation_ref = "widget-thread-9"
    assert run(interaction).conversation_ref == "widget-thread-9"


def test_chat_visitor_and_login_identifiers_are_kept_as_given() -> None:
    interaction = chat_event()
    interaction.identifiers.append(
        _identifier(pb.IDENTIFIER_KIND_CHAT_LOGIN, "User-77", verified=True)
    )
    result = run(interaction)
    assert identifier_pairs(result) == [
        (pb.IDENTIFIER_KIND_CHAT_VISITOR, "", "Vis-ABC"),
        (pb.IDENTIFIER_KIND_CHAT_LOGIN, "", "User-77"),
    ]
    assert result.identifiers[1].verified


# --- voice ---------------------------------------------------------------------------------


def test_call_is_threaded_by_call_id_and_numbers_become_e164() -> None:
    result = run(call_event())
    assert result.conversation_ref == "call:call-42"
    assert (result.call.from_number, result.call.to_number) == ("+819012345678", "+81312345678")


def test_inbound_caller_number_becomes_a_phone_identifier_once() -> None:
    interaction = call_event()
    interaction.identifiers.append(
        _identifier(pb.IDENTIFIER_KIND_PHONE, "+81 90 1234 5678", verified=True)
    )
    result = run(interaction)
    assert identifier_pairs(result) == [(pb.IDENTIFIER_KIND_PHONE, "", "+819012345678")]
    assert result.identifiers[0].verified


def test_outbound_call_adds_no_identifier() -> None:
    interaction = call_event(pb.DIRECTION_OUTBOUND)
    assert not run(interaction).identifiers


def test_withheld_caller_id_is_kept_but_identifies_nobody() -> None:
    interaction = call_event()
    interaction.call.from_number = "anonymous"
    interaction.identifiers.append(_identifier(pb.IDENTIFIER_KIND_EXTERNAL_CRM_ID, "CRM-1"))
    result = run(interaction)
    assert result.call.from_number == "anonymous"
    assert identifier_pairs(result) == [(pb.IDENTIFIER_KIND_EXTERNAL_CRM_ID, "", "CRM-1")]


@pytest.mark.parametrize(
    ("make", "detail_field", "value", "field", "code"),
    [
        # A withheld caller id identifies nobody, and the call carries no other identifier.
        (call_event, "from_number", "anonymous", "identifiers", Reason.IDENTIFIERS_MISSING),
        (
            email_event,
            "from_address",
            "mailer-daemon",
            "email.from_address",
            Reason.CHANNEL_DATA_INVALID,
        ),
        (email_event, "message_id", "<>", "email.message_id", Reason.CHANNEL_DATA_INVALID),
        (email_event, "message_id", "<a@x> <b@x>", "email.message_id", Reason.CHANNEL_DATA_INVALID),
        # The sender of an inbound SMS is the customer: it must be a phone number.
        (sms_event, "from_number", "ACME", "sms.from_number", Reason.CHANNEL_DATA_INVALID),
    ],
)
def test_what_a_channel_cannot_make_sense_of_is_rejected_naming_the_field(
    make: Callable[[], pb.Interaction], detail_field: str, value: str, field: str, code: Reason
) -> None:
    interaction = make()
    setattr(getattr(interaction, interaction.WhichOneof("detail") or ""), detail_field, value)
    error = rejection(interaction)
    assert (error.field, error.code) == (field, code)


def test_invalid_caller_number_is_kept_as_given_and_unmatchable_identifier() -> None:
    interaction = call_event()
    interaction.call.from_number = "123"
    result = run(interaction)
    assert result.call.from_number == "123"
    assert identifier_pairs(result) == [(pb.IDENTIFIER_KIND_PHONE, "", "+81123")]


def test_transcript_becomes_the_text_only_when_there_is_none() -> None:
    interaction = call_event()
    interaction.kind = pb.KIND_CALL_ENDED
    interaction.call.transcript = "お電話ありがとうございます"
    assert run(interaction).content.text == "お電話ありがとうございます"
    interaction.content.text = "summary by the agent"
    assert run(interaction).content.text == "summary by the agent"


# --- e-mail --------------------------------------------------------------------------------


def test_inbound_mail_sender_becomes_an_email_identifier() -> None:
    result = run(email_event())
    assert result.email.from_address == "taro@example.jp"
    assert identifier_pairs(result) == [(pb.IDENTIFIER_KIND_EMAIL, "", "taro@example.jp")]


def test_sender_with_a_display_name_is_reduced_to_the_address() -> None:
    interaction = email_event()
    interaction.email.from_address = "山田 太郎 <Taro@Example.JP>"
    assert run(interaction).email.from_address == "taro@example.jp"


def test_outbound_mail_adds_no_identifier() -> None:
    assert not run(email_event(pb.DIRECTION_OUTBOUND)).identifiers


def test_message_ids_get_one_pair_of_angle_brackets_and_no_spaces() -> None:
    interaction = email_event()
    interaction.email.message_id = "  m3@mail.example.jp "
    interaction.email.in_reply_to = "<<m2@mail.example.jp>>"
    interaction.email.references.extend(["<m1@mail.example.jp>\r\n <m2@mail.example.jp>"])
    result = run(interaction)
    assert result.email.message_id == "<m3@mail.example.jp>"
    assert result.email.in_reply_to == "<m2@mail.example.jp>"
    assert list(result.email.references) == ["<m1@mail.example.jp>", "<m2@mail.example.jp>"]


def test_mail_thread_root_is_the_first_reference() -> None:
    interaction = email_event()
    interaction.email.in_reply_to = "<m2@x>"
    interaction.email.references.extend(["m1@x", "<m2@x>"])
    assert run(interaction).conversation_ref == "email:<m1@x>"


def test_mail_thread_root_without_references_is_in_reply_to() -> None:
    interaction = email_event()
    interaction.email.in_reply_to = " <m2@x> "
    assert run(interaction).conversation_ref == "email:<m2@x>"


def test_first_mail_of_a_thread_is_its_own_root() -> None:
    assert run(email_event()).conversation_ref == "email:<m3@mail.example.jp>"


def test_html_body_becomes_text_body_and_content_when_there_is_no_text() -> None:
    interaction = email_event()
    interaction.email.text_body = ""
    interaction.email.html_body = (
        "<html><head><style>p {color: red}</style><title>x</title></head><body>"
        "<p>山田様</p><script>track()</script><p>ご注文ありがとう<br>ございます。</p>"
        "<div>a</div><div>b</div></body></html>"
    )
    result = run(interaction)
    assert result.email.text_body == "山田様\n\nご注文ありがとう\nございます。\n\na\nb"
    assert result.content.text == result.email.text_body
    assert result.content.subject == "返品について"


def test_given_text_body_and_content_win_over_html() -> None:
    interaction = email_event()
    interaction.email.html_body = "<p>html version</p>"
    interaction.content.text = "agent-visible text"
    interaction.content.subject = "given subject"
    result = run(interaction)
    assert result.email.text_body == "返品したいです。"
    assert result.content.text == "agent-visible text"
    assert result.content.subject == "given subject"


def test_html_to_text_collapses_whitespace_and_blank_lines() -> None:
    html = "<p>  Hello \n   <b>world</b>  </p>\n\n<p></p><p></p><br><br><br><br><p>bye&nbsp;now</p>"
    assert html_to_text(html) == "Hello world\n\nbye now"


def test_html_to_text_keeps_one_blank_line_for_consecutive_line_breaks() -> None:
    assert html_to_text("a<br><br><br>b<br>c") == "a\n\nb\nc"


def test_html_to_text_drops_comments_and_survives_deep_nesting() -> None:
    # Twice as deep as recursion may go: a recursive walk fails, the iterative one does not
    # (5000 levels proved no more and took seconds of the suite).
    depth = 2 * sys.getrecursionlimit()
    assert html_to_text("<!-- hidden -->" + "<div>" * depth + "deep" + "</div>" * depth) == "deep"


# --- SMS -----------------------------------------------------------------------------------


def test_inbound_sms_threads_by_sender_and_adds_its_number() -> None:
    result = run(sms_event())
    assert (result.sms.from_number, result.sms.to_number) == ("+819012345678", "+81312345678")
    assert result.conversation_ref == "sms:+819012345678"
    assert identifier_pairs(result) == [(pb.IDENTIFIER_KIND_PHONE, "", "+819012345678")]


def test_outbound_sms_threads_by_recipient_and_keeps_a_sender_id() -> None:
    interaction = sms_event(pb.DIRECTION_OUTBOUND)
    interaction.sms.from_number = "ACME"
    interaction.sms.to_number = "090 1234 5678"
    result = run(interaction)
    assert result.sms.from_number == "ACME"
    assert result.conversation_ref == "sms:+819012345678"
    assert not result.identifiers


def test_sms_numbers_use_the_tenants_region() -> None:
    policy = IngestPolicy(channel=pb.CHANNEL_SMS, default_region="US")
    interaction = sms_event()
    interaction.sms.from_number = "(650) 253-0000"
    assert run(interaction, policy).conversation_ref == "sms:+16502530000"


# --- social --------------------------------------------------------------------------------


def test_social_network_and_handle_are_normalised_and_identify_the_sender() -> None:
    result = run(social_event())
    assert (result.social.network, result.social.handle) == ("x", "taro_y")
    assert identifier_pairs(result) == [(pb.IDENTIFIER_KIND_SOCIAL_HANDLE, "x", "taro_y")]
    assert result.conversation_ref == "social:x:taro_y"


def test_social_thread_id_keys_the_conversation_when_present() -> None:
    interaction = social_event()
    interaction.social.thread_id = " dm-991 "
    assert run(interaction).conversation_ref == "social:x:dm-991"


def test_outbound_social_message_adds_no_identifier() -> None:
    assert not run(social_event(pb.DIRECTION_OUTBOUND)).identifiers


@pytest.mark.parametrize(
    ("network", "handle", "field"),
    [
        ("x.com", "@taro", "social.network"),
        ("x", "taro yamada", "social.handle"),
        ("x", "@@taro", "social.handle"),
    ],
)
def test_invalid_social_network_or_handle_is_rejected(
    network: str, handle: str, field: str
) -> None:
    interaction = social_event()
    interaction.social.network = network
    interaction.social.handle = handle
    assert rejection(interaction).field == field


# --- web forms -----------------------------------------------------------------------------


def test_form_fields_become_text_and_contact_fields_become_identifiers() -> None:
    result = run(web_event())
    assert [f.name for f in result.web_form.fields] == ["Name", "E-Mail", "TEL", "message"]
    assert result.content.text == (
        "Name: 山田 太郎\nE-Mail: Taro@Example.JP\nTEL: ０９０－１２３４－５６７８"
    )
    assert identifier_pairs(result) == [
        (pb.IDENTIFIER_KIND_EMAIL, "", "taro@example.jp"),
        (pb.IDENTIFIER_KIND_PHONE, "", "+819012345678"),
    ]
    assert result.conversation_ref == ""


@pytest.mark.parametrize("name", ["email", "MAIL", "e-mail"])
def test_any_email_field_name_adds_an_email_identifier(name: str) -> None:
    interaction = web_event()
    del interaction.web_form.fields[:]
    interaction.web_form.fields.add(name=name, value="hanako@example.com")
    assert identifier_pairs(run(interaction)) == [
        (pb.IDENTIFIER_KIND_EMAIL, "", "hanako@example.com")
    ]


@pytest.mark.parametrize("name", ["phone", "Tel", "TELEPHONE"])
def test_any_phone_field_name_adds_a_phone_identifier(name: str) -> None:
    interaction = web_event()
    del interaction.web_form.fields[:]
    interaction.web_form.fields.add(name=name, value="03-1234-5678")
    assert identifier_pairs(run(interaction)) == [(pb.IDENTIFIER_KIND_PHONE, "", "+81312345678")]


def test_mistyped_contact_field_is_kept_but_identifies_nobody() -> None:
    interaction = web_event()
    interaction.web_form.fields.add(name="email", value="taro at example")
    interaction.web_form.fields.add(name="phone", value="none")
    result = run(interaction)
    assert [i.kind for i in result.identifiers] == [
        pb.IDENTIFIER_KIND_EMAIL,
        pb.IDENTIFIER_KIND_PHONE,
    ]
    assert "email: taro at example" in result.content.text


def test_form_field_without_a_name_is_rejected() -> None:
    interaction = web_event()
    interaction.web_form.fields.add(name="  ", value="x")
    assert rejection(interaction).field == "web_form.fields[4].name"


def test_form_with_more_than_100_fields_is_rejected() -> None:
    interaction = web_event()
    del interaction.web_form.fields[:]
    for index in range(101):
        interaction.web_form.fields.add(name=f"f{index}", value="v")
    interaction.identifiers.append(_identifier(pb.IDENTIFIER_KIND_CHAT_VISITOR, "v1"))
    assert rejection(interaction).field == "web_form.fields"


def test_form_content_text_given_by_the_adapter_is_kept() -> None:
    interaction = web_event()
    interaction.content.text = "お問い合わせ"
    assert run(interaction).content.text == "お問い合わせ"


# --- policy --------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", [pb.CHANNEL_UNSPECIFIED, pb.CHANNEL_AGENT_DESK, 99])
def test_policy_for_a_channel_without_normaliser_is_refused(channel: int) -> None:
    with pytest.raises(ValueError, match="no ingestion normaliser"):
        IngestPolicy(channel=channel)


@pytest.mark.parametrize(
    "loose",
    [
        {"max_text_bytes": 128 * 1024},
        {"max_event_bytes": 1024 * 1024},
        {"max_identifiers": 100},
        {"max_clock_skew": timedelta(hours=1)},
    ],
)
def test_policy_looser_than_the_timeline_accepts_is_refused(loose: dict[str, object]) -> None:
    # What ingestion accepted and the timeline then dead-lettered would be lost silently.
    with pytest.raises(ValueError, match="the timeline's limit"):
        IngestPolicy(channel=pb.CHANNEL_CHAT, **loose)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", FACTORIES)
def test_what_ingestion_publishes_passes_the_timelines_contract(name: str) -> None:
    check_interaction(run(FACTORIES[name]()), limits=BUS_LIMITS, now=NOW)


def _without_identifiers() -> pb.Interaction:
    interaction = chat_event()
    del interaction.identifiers[:]
    return interaction


def _with(**changes: object) -> pb.Interaction:
    interaction = chat_event()
    for name, value in changes.items():
        setattr(interaction, name, value)
    return interaction


def _bad_phone() -> pb.Interaction:
    interaction = chat_event()
    interaction.identifiers.append(_identifier(pb.IDENTIFIER_KIND_PHONE, "not a number"))
    return interaction


def _bad_sender() -> pb.Interaction:
    interaction = email_event()
    interaction.email.from_address = "not an address"
    return interaction


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: _with(event_id="retry-1"), Reason.EVENT_ID_INVALID),
        (lambda: _with(tenant="Acme"), Reason.TENANT_INVALID),
        (lambda: _with(kind=pb.KIND_NOTE), Reason.KIND_INVALID),
        (lambda: _with(conversation_ref="a\x00b"), Reason.CONTROL_CHARACTERS),
        (lambda: _with(conversation_ref="c" * 600), Reason.FIELD_TOO_LONG),
        (_bad_phone, Reason.IDENTIFIER_INVALID),
        (_without_identifiers, Reason.IDENTIFIERS_MISSING),
        (_bad_sender, Reason.CHANNEL_DATA_INVALID),
    ],
)
def test_rejections_carry_the_contracts_reason_code(
    make: Callable[[], pb.Interaction], code: Reason
) -> None:
    assert rejection(make()).code is code


def test_policy_with_an_unknown_phone_region_is_refused() -> None:
    with pytest.raises(ValueError, match="region"):
        IngestPolicy(channel=pb.CHANNEL_SMS, tenant_regions={"acme": "XX"})


# --- verification ----------------------------------------------------------------------------


def _verification(interaction: pb.Interaction) -> dict[tuple[int, str], bool]:
    return {(i.kind, i.value): i.verified for i in run(interaction).identifiers}


def test_the_channel_vouches_for_a_caller_id_a_sender_number_and_a_social_account() -> None:
    phone = (pb.IDENTIFIER_KIND_PHONE, "+819012345678")
    assert _verification(call_event()) == {phone: True}
    assert _verification(sms_event()) == {phone: True}
    assert _verification(social_event()) == {(pb.IDENTIFIER_KIND_SOCIAL_HANDLE, "taro_y"): True}


def test_an_email_sender_is_verified_only_when_the_mail_replies_in_a_thread() -> None:
    sender = (pb.IDENTIFIER_KIND_EMAIL, "taro@example.jp")
    assert _verification(email_event()) == {sender: False}
    reply = email_event()
    reply.email.in_reply_to = "<our-answer-1@shop.example.jp>"
    assert _verification(reply) == {sender: True}


def test_a_web_form_verifies_nothing_whatever_its_producer_claims() -> None:
    interaction = web_event()
    interaction.identifiers.append(
        _identifier(pb.IDENTIFIER_KIND_EMAIL, "alice@example.jp", verified=True)
    )
    assert not any(_verification(interaction).values())


def test_a_chat_keeps_a_signed_in_sessions_verification_but_never_for_a_social_handle() -> None:
    interaction = chat_event()
    interaction.identifiers.extend(
        [
            _identifier(pb.IDENTIFIER_KIND_CHAT_LOGIN, "user-77", verified=True),
            _identifier(pb.IDENTIFIER_KIND_SOCIAL_HANDLE, "x:@taro", verified=True),
        ]
    )
    verification = _verification(interaction)
    assert verification[(pb.IDENTIFIER_KIND_CHAT_LOGIN, "user-77")]
    assert not verification[(pb.IDENTIFIER_KIND_SOCIAL_HANDLE, "taro")]
