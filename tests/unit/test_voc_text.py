"""Customer text before vectorising: personal data masked, pleasantries dropped, words kept."""

from __future__ import annotations

import pytest

from services.insights.text import clean, features, terms
from services.insights.text.terms import MAX_CHARS


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Call me on 090-1234-5678 please", "1234"),
        ("携帯は０９０－１２３４－５６７８です", "1234"),
        ("+81 90 1234 5678 is my number", "1234"),
        ("mail me at Hanako.Sato@example.jp", "hanako"),
        ("order ORD-2024-0042 is late", "0042"),
        ("ref XK77 please", "xk"),
        ("注文番号A-123456の件", "123456"),
        ("see https://shop.example.jp/mypage?id=77", "shop"),
        ("card ending 4242", "4242"),
    ],
)
def test_personal_data_and_numbers_never_become_terms(text: str, secret: str) -> None:
    found = terms(text)
    assert not any(secret in t for t in found), found
    assert secret not in clean(text).replace("<number>", "")


def test_greetings_and_signatures_are_dropped_but_the_request_is_kept() -> None:
    english = "Hi team,\nMy parcel is late again.\nBest regards,\nJohn Smith\nAcme Ltd"
    japanese = "お世話になっております。荷物が届きません。よろしくお願いいたします。佐藤花子"
    assert terms(english) == ["parcel", "late"]
    assert terms(japanese) == ["荷物", "届く"]


def test_a_long_message_after_thanks_is_not_taken_for_a_signature() -> None:
    text = (
        "Thanks for the quick answer last time. Unfortunately the replacement parcel has not "
        "arrived either and the tracking page shows nothing at all for it."
    )
    assert "replacement" in terms(text)


def test_japanese_words_are_whole_words_in_normalised_form() -> None:
    assert terms("定期便を解約したいです。在庫が余っているので") == [
        "定期便",
        "解約",
        "在庫",
        "余る",
    ]
    assert terms("ｸｰﾎﾟﾝが使えない") == ["クーポン", "使う"]


def test_names_of_people_are_not_terms() -> None:
    assert "田中" not in terms("田中さんに電話で解約を伝えました")


def test_english_plurals_fold_into_one_term() -> None:
    assert terms("two charges, one charge, crashes, deliveries") == [
        "two",
        "charge",
        "charge",
        "crash",
        "delivery",
    ]


def test_glossary_gives_japanese_and_english_a_shared_feature() -> None:
    shared = set(features("荷物が届かない")) & set(features("my parcel has not arrived"))
    assert shared == {"≈delivery"}


@pytest.mark.parametrize(
    "text", ["", "   ", "Hello!", "090-1234-5678", "よろしくお願いします", "\x00\ufffd", "🙂🙂"]
)
def test_nothing_but_pleasantries_or_personal_data_gives_no_terms(text: str) -> None:
    assert terms(text) == []


def test_oversized_and_hostile_text_is_bounded() -> None:
    huge = "配送が遅い。" * 100_000 + "secretword"
    found = terms(huge)
    assert found
    assert "secretword" not in found
    assert len("".join(found)) <= MAX_CHARS
    assert terms("<script>alert(1)</script> refund") == ["script", "alert", "script", "refund"]
