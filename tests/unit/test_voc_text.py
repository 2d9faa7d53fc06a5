"""Customer text before vectorising: personal data masked, pleasantries dropped, words kept."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.insights.text import clean, customer_text, features, terms
from services.insights.text.terms import MAX_CHARS
from tsunagu.v1 import interaction_pb2 as pb


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


def _entry(**fields: object) -> pb.Interaction:
    defaults: dict[str, object] = {
        "kind": pb.KIND_MESSAGE,
        "direction": pb.DIRECTION_INBOUND,
        "actor": pb.Actor(type=pb.ACTOR_TYPE_CUSTOMER),
        "content": pb.Content(text="荷物が届きません"),
    }
    return pb.Interaction(**{**defaults, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (_entry(), "荷物が届きません"),
        (_entry(kind=pb.KIND_CALL_ENDED, actor=pb.Actor()), "荷物が届きません"),
        (
            _entry(kind=pb.KIND_EMAIL, content=pb.Content(subject="Cancel", text="Please stop")),
            "Cancel\nPlease stop",
        ),
        (_entry(kind=pb.KIND_EMAIL, content=pb.Content(subject="Hi", text="Hi there")), "Hi there"),
        (_entry(direction=pb.DIRECTION_OUTBOUND), None),
        (_entry(actor=pb.Actor(type=pb.ACTOR_TYPE_AGENT)), None),
        (_entry(actor=pb.Actor(type=pb.ACTOR_TYPE_BOT)), None),
        (_entry(kind=pb.KIND_CALL_STARTED), None),
        (_entry(kind=pb.KIND_NOTE, direction=pb.DIRECTION_INTERNAL), None),
        (_entry(agent_action=pb.AgentActionDetail(note=pb.NoteAction(text="x"))), None),
        (_entry(content=pb.Content(text="   ")), None),
    ],
)
def test_only_inbound_customer_messages_have_customer_text(
    entry: pb.Interaction, expected: str | None
) -> None:
    assert customer_text(entry) == expected


@given(
    st.from_regex(r"0[789]0-\d{4}-\d{4}|\+81 ?\d{2} ?\d{4} ?\d{4}|\d{6,12}", fullmatch=True),
    st.from_regex(r"[a-z]{3,8}\.[a-z]{3,8}@[a-z]{3,8}\.(jp|com)", fullmatch=True),
    st.sampled_from(["荷物が届きません。", "My parcel is late. ", "解約したい "]),
)
def test_no_phone_number_or_email_ever_survives_into_terms(
    phone: str, email: str, text: str
) -> None:
    found = terms(f"{text}{phone} {email} 連絡先は{phone}です")
    joined = " ".join(found)
    assert not any(ch.isdigit() for ch in joined)
    for part in re.split(r"[.@]", email):
        assert part not in found or part in terms(text)
