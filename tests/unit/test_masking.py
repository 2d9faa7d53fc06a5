"""What each role sees of phones, emails, addresses, names and free text (gateway.masking)."""

from __future__ import annotations

import pytest

from gateway.masking import (
    Personal,
    mask_card_runs,
    mask_email,
    mask_free_text,
    mask_phone,
    view,
    view_identifier,
)

AGENT = frozenset({"agent"})
SUPERVISOR = frozenset({"supervisor"})
OFFICER = frozenset({"privacy_officer"})
CARD = "4111 1111 1111 1111"  # Luhn-valid


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("+819012345678", "+81 90-****-5678"),
        ("090-1234-5678", "+81 90-****-5678"),
        ("+81312345678", "+81 3-****-5678"),
        ("+16502530000", "+1 650-***-0000"),
        ("not a number", "not a number"),
        ("12345", "*2345"),
        ("+81", "+**"),  # too short to keep four digits of: nothing kept
    ],
)
def test_a_phone_number_keeps_its_country_area_and_last_four_digits(
    stored: str, shown: str
) -> None:
    assert mask_phone(stored) == shown


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("hanako@example.com", "h****@example.com"),
        ("h@example.com", "h****@example.com"),
        ("@example.com", "@example.com"),
        ("", ""),
    ],
)
def test_an_email_keeps_its_first_letter_and_domain(stored: str, shown: str) -> None:
    assert mask_email(stored) == shown


def test_free_text_masks_emails_phones_and_cards_and_keeps_the_rest() -> None:
    said = f"Card {CARD}, call ０９０−１２３４−５６７８ or 090 1234 5678, mail hanako@example.com."

    shown = mask_free_text(said)

    assert shown == (
        "Card **** **** **** 1111, call ***−****−５６７８ or *** **** 5678, mail h****@example.com."
    )


def test_dates_times_and_short_numbers_stay_readable() -> None:
    said = "Delivered 2025-03-01 at 10:30, order 12345678, 3 parcels"
    assert mask_free_text(said) == said


def test_full_width_digits_are_masked_like_ascii_ones() -> None:
    shown = mask_free_text("電話は０９０１２３４５６７８です")
    assert shown == "電話は*******５６７８です"


def test_only_luhn_valid_card_numbers_are_masked_for_every_role() -> None:
    not_a_card = "4111 1111 1111 1112"
    assert mask_card_runs(f"{CARD} / {not_a_card}") == f"**** **** **** 1111 / {not_a_card}"
    for roles in (AGENT, SUPERVISOR, OFFICER):
        assert "4111 1111 1111 1111" not in view(roles, Personal.FREE_TEXT, f"card {CARD}")


@pytest.mark.parametrize("roles", [AGENT, frozenset(), frozenset({"analyst"})])
def test_lower_roles_see_masks(roles: frozenset[str]) -> None:
    assert view(roles, Personal.PHONE, "+819012345678") == "+81 90-****-5678"
    assert view(roles, Personal.EMAIL, "hanako@example.com") == "h****@example.com"
    assert view(roles, Personal.ADDRESS, "東京都渋谷区神南1-2-3") == "東京都 ****"
    assert view(roles, Personal.ADDRESS, "1-2-3 Jinnan, Shibuya") == "1-2-3 ****"
    # An agent greets the caller by name.
    assert view(roles, Personal.NAME, "Yamada Hanako") == "Yamada Hanako"


@pytest.mark.parametrize("roles", [SUPERVISOR, OFFICER, frozenset({"agent", "supervisor"})])
def test_supervisors_and_privacy_officers_see_identifiers_in_full(roles: frozenset[str]) -> None:
    assert view(roles, Personal.PHONE, "+819012345678") == "+819012345678"
    assert view_identifier(roles, "EMAIL", "hanako@example.com") == "hanako@example.com"


def test_identifiers_are_masked_by_their_kind() -> None:
    assert view_identifier(AGENT, "PHONE", "+819012345678") == "+81 90-****-5678"
    assert view_identifier(AGENT, "EMAIL", "hanako@example.com") == "h****@example.com"
    assert view_identifier(AGENT, "SOCIAL_HANDLE", "hanako") == "hanako"
    # A chat login that is an address is masked as one.
    assert view_identifier(AGENT, "CHAT_LOGIN", "hanako@example.com") == "h****@example.com"


@pytest.mark.parametrize(
    "hostile",
    [
        "a" * 65_536,
        "a" * 65_536 + "@" + "b" * 65_536,
        "@" * 65_536,
        "1-" * 32_768,
        "1 " * 32_768 + "x",
        "a@b." * 16_384,
    ],
)
def test_long_hostile_texts_are_masked_in_linear_time(hostile: str) -> None:
    # Regular expressions that backtrack would take minutes here (the per-test timeout).
    shown = mask_free_text(hostile)
    assert len(shown) == len(hostile) or "****" in shown
