"""Unit tests of identifier normalisation (phone, e-mail, social handles, opaque ids)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsunagu.identifiers import (
    IdentifierFormatError,
    NormalizedIdentifier,
    normalize_email,
    normalize_identifier,
    normalize_phone,
    normalize_social_handle,
)
from tsunagu.v1 import interaction_pb2 as pb

REGIONS = ("JP", "US", "GB", "DE", "KR", "BR", "IT")
FULL_WIDTH = str.maketrans("0123456789+-() ", "０１２３４５６７８９＋－（）\u3000")


# --- phone -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "090-1234-5678",
        "09012345678",
        "+81 90-1234-5678",
        "+819012345678",
        "(090) 1234 5678",
        "０９０－１２３４－５６７８",
        "  090 1234 5678  ",
        "tel:+81-90-1234-5678",
    ],
)
def test_phone_written_any_way_normalises_to_e164(raw: str) -> None:
    assert normalize_phone(raw, default_region="JP") == ("+819012345678", True)


def test_phone_extension_is_dropped_for_matching() -> None:
    assert normalize_phone("+1 650 253 0000 ext. 123", default_region="JP") == (
        "+16502530000",
        True,
    )


def test_phone_japanese_extension_marker_is_dropped_for_matching() -> None:
    assert normalize_phone("０３－１２３４－５６７８　内線１２", default_region="JP") == (
        "+81312345678",
        True,
    )


def test_phone_national_format_is_read_with_the_default_region() -> None:
    assert normalize_phone("(650) 253-0000", default_region="US") == ("+16502530000", True)
    assert normalize_phone("03-1234-5678", default_region="JP") == ("+81312345678", True)


def test_phone_with_country_code_ignores_the_default_region() -> None:
    assert normalize_phone("+81 3-1234-5678", default_region="US") == ("+81312345678", True)


def test_phone_that_parses_but_is_invalid_is_kept_unmatchable_in_e164() -> None:
    assert normalize_phone("123", default_region="JP") == ("+81123", False)


def test_invalid_phone_whose_e164_is_unstable_keeps_its_cleaned_digits() -> None:
    # phonenumbers formats this as +82006079, which re-formats as +8206079: not a stable key.
    assert normalize_phone("+82 0006 079", default_region="JP") == ("+820006079", False)


def test_invalid_phone_never_becomes_matchable_by_renormalising() -> None:
    # The E.164 form phonenumbers gives (+27111182848 after two rounds) would be *valid*.
    value, matchable = normalize_phone("+27 00 111 182 848", default_region="GB")
    assert (value, matchable) == ("+2700111182848", False)
    assert normalize_phone(value, default_region="GB") == (value, False)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "abc",
        "---",
        "+",
        "+999 12345",  # no such country code
        "9" * 30,  # too long to be a phone number
        "0" * 60 + "12345",  # longer than 64 characters
        "090\x001234\x005678",
    ],
)
def test_hopeless_phone_is_rejected(raw: str) -> None:
    with pytest.raises(IdentifierFormatError):
        normalize_phone(raw, default_region="JP")


_PHONE_TEXT = st.text(alphabet="0123456789" * 3 + " -()+.０１２３４５６７８９－＋", max_size=24)


@given(raw=_PHONE_TEXT, region=st.sampled_from(REGIONS))
def test_phone_normalisation_is_idempotent(raw: str, region: str) -> None:
    try:
        value, matchable = normalize_phone(raw, default_region=region)
    except IdentifierFormatError:
        return
    assert normalize_phone(value, default_region=region) == (value, matchable)


@given(
    digits=st.text(alphabet="0123456789", min_size=4, max_size=15),
    plus=st.booleans(),
    separators=st.lists(st.sampled_from(["", "-", " ", "(", ")"]), min_size=16, max_size=16),
    region=st.sampled_from(REGIONS),
)
def test_full_width_and_ascii_digits_give_the_same_phone(
    digits: str, plus: bool, separators: list[str], region: str
) -> None:
    ascii_raw = ("+" if plus else "") + "".join(
        digit + sep for digit, sep in zip(digits, separators, strict=False)
    )
    full_width_raw = ascii_raw.translate(FULL_WIDTH)
    try:
        expected = normalize_phone(ascii_raw, default_region=region)
    except IdentifierFormatError:
        with pytest.raises(IdentifierFormatError):
            normalize_phone(full_width_raw, default_region=region)
        return
    assert normalize_phone(full_width_raw, default_region=region) == expected


@given(raw=st.text(max_size=80), region=st.sampled_from(REGIONS))
def test_phone_normalisation_of_any_text_fails_only_with_identifier_format_error(
    raw: str, region: str
) -> None:
    try:
        value, _ = normalize_phone(raw, default_region=region)
    except IdentifierFormatError:
        return
    assert value


# --- e-mail ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Taro.Yamada@Example.JP ", "taro.yamada@example.jp"),
        ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "taro@example.jp"),
        ("TARO+SHOP@EXAMPLE.CO.JP", "taro+shop@example.co.jp"),
        ("\u3000hanako@example.com\t", "hanako@example.com"),
    ],
)
def test_email_is_folded_trimmed_and_lower_cased(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


def test_email_sub_address_tag_is_not_folded() -> None:
    assert normalize_email("taro+news@example.jp") != normalize_email("taro@example.jp")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "taro.example.jp",
        "taro@@example.jp",
        "taro@home@example.jp",
        "@example.jp",
        "taro@",
        "taro@localhost",
        "taro@example..jp",
        "taro@.example.jp",
        "taro@example.jp.",
        "taro yamada@example.jp",
        "taro@exa mple.jp",
        "taro\x00@example.jp",
        "taro\u200b@example.jp",
        "a" * 250 + "@example.jp",
    ],
)
def test_malformed_email_is_rejected(raw: str) -> None:
    with pytest.raises(IdentifierFormatError):
        normalize_email(raw)


def test_email_of_exactly_254_characters_is_accepted() -> None:
    address = "a" * 242 + "@example.com"
    assert len(address) == 254
    assert normalize_email(address) == address


@given(raw=st.one_of(st.emails(), st.text(max_size=60)))
def test_email_normalisation_is_idempotent(raw: str) -> None:
    try:
        value = normalize_email(raw)
    except IdentifierFormatError:
        return
    assert normalize_email(value) == value


@given(
    address=st.emails(),
    case_flips=st.lists(st.booleans(), min_size=300, max_size=300),
    left=st.sampled_from(["", " ", "\t", "\u3000", "\n "]),
    right=st.sampled_from(["", " ", "\t", "\u3000", " \r\n"]),
)
def test_email_case_and_surrounding_whitespace_are_irrelevant(
    address: str, case_flips: list[bool], left: str, right: str
) -> None:
    variant = "".join(
        char.upper() if flip else char.lower()
        for char, flip in zip(address, case_flips, strict=False)
    )
    try:
        expected = normalize_email(address)
    except IdentifierFormatError:
        return
    assert normalize_email(left + variant + right) == expected


# --- social handles ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("network", "handle", "expected"),
    [
        ("x", "@Taro_Y", "x:taro_y"),
        ("X", "taro_y", "x:taro_y"),
        (" Instagram ", " ＠Hanako.Shop ", "instagram:hanako.shop"),
        ("line", "Ｕ１２３ａｂｃ", "line:u123abc"),
    ],
)
def test_social_handle_is_keyed_by_network_and_folded_handle(
    network: str, handle: str, expected: str
) -> None:
    assert normalize_social_handle(network, handle) == expected


@pytest.mark.parametrize(
    ("network", "handle"),
    [
        ("", "taro"),
        ("my network", "taro"),
        ("x.com", "taro"),
        ("n" * 33, "taro"),
        ("x", ""),
        ("x", "@"),
        ("x", "@@taro"),
        ("x", "taro yamada"),
        ("x", "taro\x07"),
        ("x", "taro\u200b"),
        ("x", "t" * 101),
    ],
)
def test_invalid_social_handle_is_rejected(network: str, handle: str) -> None:
    with pytest.raises(IdentifierFormatError):
        normalize_social_handle(network, handle)


def test_social_handle_of_100_characters_is_accepted() -> None:
    assert normalize_social_handle("x", "@" + "t" * 100) == "x:" + "t" * 100


@given(
    network=st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True),
    handle=st.text(max_size=40),
)
def test_social_handle_normalisation_is_idempotent(network: str, handle: str) -> None:
    try:
        value = normalize_social_handle(network, handle)
    except IdentifierFormatError:
        return
    normalized_network, normalized_handle = value.split(":", 1)
    assert normalize_social_handle(normalized_network, normalized_handle) == value


# --- normalize_identifier ----------------------------------------------------------------


def _identifier(kind: int, value: str, network: str = "") -> pb.Identifier:
    return pb.Identifier(kind=pb.IdentifierKind.ValueType(kind), value=value, network=network)


def test_identifier_of_each_kind_is_normalised_by_its_rule() -> None:
    cases = [
        (_identifier(pb.IDENTIFIER_KIND_EMAIL, " Taro@Example.JP"), "taro@example.jp", True),
        (_identifier(pb.IDENTIFIER_KIND_PHONE, "090-1234-5678"), "+819012345678", True),
        (_identifier(pb.IDENTIFIER_KIND_PHONE, "123"), "+81123", False),
        (_identifier(pb.IDENTIFIER_KIND_SOCIAL_HANDLE, "@Taro", "X"), "x:taro", True),
        (_identifier(pb.IDENTIFIER_KIND_CHAT_VISITOR, " Vis-ABC "), "Vis-ABC", True),
        (_identifier(pb.IDENTIFIER_KIND_CHAT_LOGIN, "User@Shop"), "User@Shop", True),
        (_identifier(pb.IDENTIFIER_KIND_EXTERNAL_CRM_ID, "CRM-0001"), "CRM-0001", True),
    ]
    for identifier, value, matchable in cases:
        assert normalize_identifier(identifier, default_region="JP") == NormalizedIdentifier(
            identifier.kind, value, matchable
        )


def test_social_identifier_in_key_form_without_network_is_accepted() -> None:
    identifier = _identifier(pb.IDENTIFIER_KIND_SOCIAL_HANDLE, "x:taro")
    assert normalize_identifier(identifier, default_region="JP").value == "x:taro"


def test_social_identifier_without_network_is_rejected_on_the_network() -> None:
    identifier = _identifier(pb.IDENTIFIER_KIND_SOCIAL_HANDLE, "@taro")
    with pytest.raises(IdentifierFormatError) as caught:
        normalize_identifier(identifier, default_region="JP")
    assert caught.value.part == "network"


@pytest.mark.parametrize("kind", [pb.IDENTIFIER_KIND_UNSPECIFIED, 99])
def test_unspecified_or_unknown_identifier_kind_is_rejected(kind: int) -> None:
    with pytest.raises(IdentifierFormatError) as caught:
        normalize_identifier(_identifier(kind, "taro@example.jp"), default_region="JP")
    assert caught.value.part == "kind"


@pytest.mark.parametrize(
    "kind",
    [
        pb.IDENTIFIER_KIND_CHAT_VISITOR,
        pb.IDENTIFIER_KIND_CHAT_LOGIN,
        pb.IDENTIFIER_KIND_EXTERNAL_CRM_ID,
    ],
)
@pytest.mark.parametrize("value", ["", "   ", "a" * 257, "id\x00", "id\x7f", "id\x85x"])
def test_invalid_opaque_identifier_is_rejected(kind: int, value: str) -> None:
    with pytest.raises(IdentifierFormatError):
        normalize_identifier(_identifier(kind, value), default_region="JP")


def test_opaque_identifier_of_256_characters_keeps_its_case() -> None:
    value = "Ab" * 128
    identifier = _identifier(pb.IDENTIFIER_KIND_EXTERNAL_CRM_ID, value)
    assert normalize_identifier(identifier, default_region="JP").value == value


_KINDS = st.sampled_from(
    [
        pb.IDENTIFIER_KIND_EMAIL,
        pb.IDENTIFIER_KIND_PHONE,
        pb.IDENTIFIER_KIND_SOCIAL_HANDLE,
        pb.IDENTIFIER_KIND_CHAT_VISITOR,
        pb.IDENTIFIER_KIND_CHAT_LOGIN,
        pb.IDENTIFIER_KIND_EXTERNAL_CRM_ID,
    ]
)


@given(
    kind=_KINDS,
    value=st.one_of(st.text(max_size=40), st.emails(), _PHONE_TEXT),
    network=st.sampled_from(["", "x", "LINE", "bad network"]),
    region=st.sampled_from(REGIONS),
)
def test_identifier_normalisation_is_idempotent(
    kind: int, value: str, network: str, region: str
) -> None:
    try:
        first = normalize_identifier(_identifier(kind, value, network), default_region=region)
    except IdentifierFormatError:
        return
    # The normalised value alone (social handles in `network:handle` key form) is enough.
    again = normalize_identifier(_identifier(kind, first.value), default_region=region)
    assert again == first
