"""The write-path contract under hostile input: ids, tenants, limits, enums, arbitrary bytes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ulid import ULID

from tests import builders
from tsunagu.bus.subjects import interaction_subject
from tsunagu.contracts import (
    BUS_LIMITS,
    ContractViolation,
    Limits,
    Reason,
    canonical_event_id,
    channel_label,
    check_interaction,
    check_tenant,
    is_tenant_name,
)
from tsunagu.contracts.limits import CONTROL_CHARACTERS, MAX_TEXT_BYTES
from tsunagu.v1 import interaction_pb2 as pb

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
# Hypothesis draws from the whole of Unicode, surrogates excluded (protobuf strings are UTF-8).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)


def chat() -> pb.Interaction:
    return builders.chat("acme", at=NOW - timedelta(minutes=1))


def violation(interaction: pb.Interaction, *, now: datetime = NOW) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        check_interaction(interaction, limits=BUS_LIMITS, now=now)
    return caught.value


def outcome(
    interaction: pb.Interaction, *, limits: Limits = BUS_LIMITS
) -> ContractViolation | None:
    """The violation, or None when the interaction passes."""
    try:
        check_interaction(interaction, limits=limits, now=NOW)
    except ContractViolation as exc:
        return exc
    return None


def test_the_builders_chat_passes_so_each_test_below_breaks_one_rule() -> None:
    check_interaction(chat(), limits=BUS_LIMITS, now=NOW)


# -- event ids ---------------------------------------------------------------------------------


@settings(deadline=None)
@given(st.uuids())
def test_any_uuid_in_any_case_canonicalises_to_lower_case(value: uuid.UUID) -> None:
    if value.int == 0:
        with pytest.raises(ContractViolation):
            canonical_event_id(str(value))
        return
    assert canonical_event_id(str(value).upper()) == str(value)
    assert canonical_event_id(str(value)) == str(value)


@settings(deadline=None)
@given(st.binary(min_size=16, max_size=16))
def test_any_ulid_in_any_case_canonicalises_to_upper_case(raw: bytes) -> None:
    ulid = str(ULID.from_bytes(raw))
    if raw == bytes(16):
        with pytest.raises(ContractViolation):
            canonical_event_id(ulid)
        return
    assert canonical_event_id(ulid.lower()) == ulid


@settings(deadline=None)
@given(TEXT)
def test_arbitrary_text_is_a_canonical_id_or_an_event_id_violation(value: str) -> None:
    try:
        canonical = canonical_event_id(value)
    except ContractViolation as exc:
        error: ContractViolation | None = exc
    else:
        error = None
        assert len(canonical) in {26, 36}
        assert canonical_event_id(canonical) == canonical
    if error is not None:
        assert (error.field, error.code) == ("event_id", Reason.EVENT_ID_INVALID)


@pytest.mark.parametrize(
    "value",
    [
        "e" * 5000,
        " 01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "01ARZ3NDEKTSV4RRFFQ69G5FA\x00",
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301\n",
        "３f2504e0-4f89-11d3-9a0c-0305e82c3301",  # a full-width digit
    ],
)
def test_hostile_event_ids_are_refused(value: str) -> None:
    with pytest.raises(ContractViolation) as caught:
        canonical_event_id(value)
    assert caught.value.code is Reason.EVENT_ID_INVALID


def test_an_event_id_on_the_bus_must_already_be_canonical() -> None:
    interaction = chat()
    interaction.event_id = interaction.event_id.upper()
    error = violation(interaction)
    assert (error.field, error.code) == ("event_id", Reason.EVENT_ID_INVALID)


# -- tenants -----------------------------------------------------------------------------------


@settings(deadline=None)
@given(TEXT)
def test_an_accepted_tenant_is_exactly_one_subject_token(tenant: str) -> None:
    if not is_tenant_name(tenant):
        with pytest.raises(ContractViolation) as caught:
            check_tenant(tenant)
        assert caught.value.code is Reason.TENANT_INVALID
        return
    assert check_tenant(tenant) == tenant
    assert interaction_subject(tenant, pb.CHANNEL_CHAT).split(".")[1] == tenant
    assert 1 <= len(tenant) <= 63
    assert tenant == tenant.lower().strip()


@pytest.mark.parametrize("tenant", ["acme.evil", "acme*", "acme>", "ACME", "a" * 64, "acme\x00"])
def test_a_tenant_that_could_reach_another_tenants_subjects_is_refused(tenant: str) -> None:
    interaction = chat()
    interaction.tenant = tenant
    assert violation(interaction).code is Reason.TENANT_INVALID


# -- strings -----------------------------------------------------------------------------------


@settings(deadline=None)
@given(TEXT)
def test_text_is_accepted_exactly_when_it_has_no_control_characters(text: str) -> None:
    interaction = chat()
    interaction.content.text = text
    error = outcome(interaction)
    if CONTROL_CHARACTERS.search(text):
        assert error is not None
        assert (error.field, error.code) == ("content.text", Reason.CONTROL_CHARACTERS)
    else:
        assert error is None


SETTERS: dict[str, Callable[[pb.Interaction, str], None]] = {
    "identifiers[0].value": lambda i, v: setattr(i.identifiers[0], "value", v),
    "actor.display_name": lambda i, v: setattr(i.actor, "display_name", v),
    "chat.session_id": lambda i, v: setattr(i.chat, "session_id", v),
    "conversation_ref": lambda i, v: setattr(i, "conversation_ref", v),
}


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x0b"])
@pytest.mark.parametrize("path", list(SETTERS))
def test_control_characters_in_ids_are_refused_naming_the_field(char: str, path: str) -> None:
    interaction = chat()
    SETTERS[path](interaction, f"x{char}y")
    error = violation(interaction)
    assert (error.field, error.code) == (path, Reason.CONTROL_CHARACTERS)


def test_a_900_kb_text_is_too_large_before_the_event_is() -> None:
    interaction = chat()
    interaction.content.text = "a" * 900_000
    error = violation(interaction)
    assert (error.field, error.code) == ("content.text", Reason.TEXT_TOO_LARGE)


def test_text_limit_counts_utf8_bytes_not_characters() -> None:
    interaction = chat()
    interaction.content.text = "あ" * (MAX_TEXT_BYTES // 3)
    check_interaction(interaction, limits=BUS_LIMITS, now=NOW)
    interaction.content.text += "あ"
    assert violation(interaction).code is Reason.TEXT_TOO_LARGE


def test_an_id_over_256_bytes_is_too_long_not_a_text() -> None:
    interaction = chat()
    interaction.identifiers[0].value = "v" * 257
    error = violation(interaction)
    assert (error.field, error.code) == ("identifiers[0].value", Reason.FIELD_TOO_LONG)


def test_an_agents_words_are_texts_and_the_customer_id_an_id() -> None:
    note = builders.agent_action(
        "acme", "cus_1", at=NOW, note=pb.NoteAction(text="お客様に折り返し電話" * 1000)
    )
    check_interaction(note, limits=BUS_LIMITS, now=NOW)  # 30 KB of an agent's words
    note.agent_action.customer_id = "c" * 300
    error = violation(note)
    assert (error.field, error.code) == ("agent_action.customer_id", Reason.FIELD_TOO_LONG)


def test_strings_each_within_their_limit_can_still_make_the_event_too_large() -> None:
    interaction = chat()
    for index in range(20):
        interaction.identifiers.add(
            kind=pb.IDENTIFIER_KIND_EXTERNAL_CRM_ID, value=f"{index:02d}" * 100
        )
    with pytest.raises(ContractViolation) as caught:
        check_interaction(interaction, limits=Limits(max_event_bytes=4096), now=NOW)
    assert (caught.value.field, caught.value.code) == ("interaction", Reason.EVENT_TOO_LARGE)


# -- time --------------------------------------------------------------------------------------


@settings(deadline=None)
@given(
    st.integers(min_value=-62135596800, max_value=253402300799),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
)
def test_occurred_at_is_accepted_only_between_2000_and_the_clock_skew(
    seconds: int, nanos: int
) -> None:
    interaction = chat()
    interaction.occurred_at.seconds = seconds
    interaction.occurred_at.nanos = nanos
    earliest = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
    latest = NOW + BUS_LIMITS.max_clock_skew
    error = outcome(interaction)
    instant = seconds * 10**9 + nanos
    if 0 <= nanos < 10**9 and earliest * 10**9 <= instant <= int(latest.timestamp()) * 10**9:
        assert error is None
    else:
        assert error is not None
        assert (error.field, error.code) == ("occurred_at", Reason.OCCURRED_AT_INVALID)


def test_year_9999_is_refused_and_the_skew_is_allowed() -> None:
    interaction = chat()
    interaction.occurred_at.FromDatetime(datetime(9999, 12, 31, tzinfo=UTC))
    assert violation(interaction).code is Reason.OCCURRED_AT_INVALID
    interaction.occurred_at.FromDatetime(NOW + timedelta(minutes=9))
    check_interaction(interaction, limits=BUS_LIMITS, now=NOW)


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_interaction(chat(), limits=BUS_LIMITS, now=NOW.replace(tzinfo=None))


# -- enums and details -------------------------------------------------------------------------


@settings(deadline=None)
@given(INT32)
def test_a_channel_is_accepted_only_if_known_and_its_detail_matches(channel: int) -> None:
    interaction = chat()
    interaction.channel = pb.Channel.ValueType(channel)
    error = outcome(interaction)
    if channel == pb.CHANNEL_CHAT:
        assert error is None
    elif channel in pb.Channel.DESCRIPTOR.values_by_number and channel != 0:
        assert error is not None
        assert error.code in {Reason.KIND_INVALID, Reason.DETAIL_INVALID}
    else:
        assert error is not None
        assert error.code is Reason.CHANNEL_INVALID
        assert channel_label(channel) in error.reason


@settings(deadline=None)
@given(INT32, INT32, INT32)
def test_unknown_kind_direction_or_actor_numbers_are_refused_with_their_code(
    kind: int, direction: int, actor: int
) -> None:
    interaction = chat()
    interaction.kind = pb.Kind.ValueType(kind)
    interaction.direction = pb.Direction.ValueType(direction)
    interaction.actor.type = pb.ActorType.ValueType(actor)
    valid = (
        kind == pb.KIND_MESSAGE
        and direction in pb.Direction.DESCRIPTOR.values_by_number
        and direction != 0
        and actor in pb.ActorType.DESCRIPTOR.values_by_number
    )
    error = outcome(interaction)
    if valid:
        assert error is None
    else:
        assert error is not None
        assert error.code in {Reason.KIND_INVALID, Reason.DIRECTION_INVALID, Reason.ACTOR_INVALID}


@pytest.mark.parametrize(
    ("kind", "code"),
    [(pb.KIND_NOTE, Reason.KIND_INVALID), (pb.KIND_MESSAGE, Reason.DETAIL_INVALID)],
)
def test_an_agent_action_outside_the_agent_desk_is_refused(kind: int, code: Reason) -> None:
    interaction = chat()
    interaction.kind = pb.Kind.ValueType(kind)
    interaction.agent_action.customer_id = "cus_1"
    interaction.agent_action.note.text = "not on chat"
    assert violation(interaction).code is code


def test_an_agent_desk_event_must_name_its_action() -> None:
    note = builders.agent_action("acme", "cus_1", at=NOW, note=pb.NoteAction(text="x"))
    note.agent_action.ClearField("note")
    error = violation(note)
    assert (error.field, error.code) == ("agent_action", Reason.DETAIL_INVALID)


@pytest.mark.parametrize(
    ("channel", "label"),
    [
        (pb.CHANNEL_SMS, "sms"),
        (pb.CHANNEL_AGENT_DESK, "agent_desk"),
        (99, "unknown channel 99"),
        (pb.CHANNEL_UNSPECIFIED, "unspecified channel"),
    ],
)
def test_channels_are_named_one_way(channel: int, label: str) -> None:
    assert channel_label(channel) == label


# -- arbitrary bytes ---------------------------------------------------------------------------


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_decodable_bytes_are_accepted_or_refused_with_a_reason_never_a_crash(
    data: bytes,
) -> None:
    seed = chat().SerializeToString()
    for payload in (data, seed + data, seed[: len(data) % len(seed)] + data):
        try:
            interaction = pb.Interaction.FromString(payload)
        except DecodeError:
            continue
        error = outcome(interaction)  # anything but a ContractViolation fails the test
        assert error is None or error.code in set(Reason)


# -- limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loose",
    [
        {"max_text_bytes": MAX_TEXT_BYTES + 1},
        {"max_event_bytes": 1024 * 1024},
        {"max_identifiers": 33},
        {"max_clock_skew": timedelta(hours=1)},
    ],
)
def test_a_producer_may_not_be_looser_than_the_timeline(loose: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="the timeline's limit"):
        Limits(**loose)  # type: ignore[arg-type]


def test_reason_codes_are_stable() -> None:
    # Dead letters carry these in a header that operators filter on: add, never rename.
    assert {r.value for r in Reason} >= {
        "malformed",
        "subject_mismatch",
        "not_recorded",
        "event_id_invalid",
        "tenant_invalid",
        "channel_invalid",
        "kind_invalid",
        "direction_invalid",
        "actor_invalid",
        "occurred_at_invalid",
        "detail_invalid",
        "control_characters",
        "text_too_large",
        "field_too_long",
        "event_too_large",
        "too_many_identifiers",
        "identifier_invalid",
        "identifiers_missing",
        "channel_data_invalid",
    }
