"""What solved it last time: similar resolved cases and knowledge article search."""

from __future__ import annotations

import pytest

from services.insights.similar import Article, CaseIndex, KnowledgeBase, ResolvedCase
from services.insights.similar.index import MAX_RESULTS

CASES = [
    ResolvedCase(
        "double", "カードに同じ金額が2回請求されています", "重複した決済を取り消し返金しました"
    ),
    ResolvedCase("late", "My parcel is a week late", "Re-shipped by express at no charge"),
    ResolvedCase("login", "ログインできません", "パスワード再設定のリンクを再送しました"),
    ResolvedCase("crash", "The app crashes on start", "Asked to update the app to 5.3"),
    ResolvedCase("address", "引っ越したので住所を変えたい", "配送先住所を更新しました"),
]


@pytest.fixture(scope="module")
def index() -> CaseIndex:
    return CaseIndex(CASES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I was charged twice on my credit card", "double"),
        ("荷物がまだ届きません", "late"),
        ("I forgot my password and cannot log in", "login"),
        ("アプリが起動しない、すぐ落ちる", "crash"),
        ("please update my shipping address, I moved", "address"),
    ],
)
def test_an_open_case_finds_the_resolved_case_of_its_kind_across_languages(
    index: CaseIndex, text: str, expected: str
) -> None:
    hits = index.nearest(text, 3)
    assert hits[0][0] == expected
    assert index.resolution_note(expected) == next(
        c.resolution_note for c in CASES if c.case_id == expected
    )


def test_scores_are_ordered_and_bounded(index: CaseIndex) -> None:
    hits = index.nearest("二重請求の返金とアプリのクラッシュ", 5)
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores)
    assert len(hits) <= 5


def test_the_open_case_itself_is_left_out(index: CaseIndex) -> None:
    hits = index.nearest("My parcel is a week late", 5, exclude={"late"})
    assert "late" not in [case_id for case_id, _ in hits]


def test_the_resolution_note_makes_a_case_findable(index: CaseIndex) -> None:
    assert index.nearest("re-shipped express", 1)[0][0] == "late"


@pytest.mark.parametrize("text", ["", "Hello!", "090-1234-5678", "quantum chromodynamics"])
def test_nothing_in_common_finds_nothing(index: CaseIndex, text: str) -> None:
    assert index.nearest(text, 5) == []


@pytest.mark.parametrize("k", [0, -1, MAX_RESULTS + 1, 10**9])
def test_out_of_range_k_is_refused(index: CaseIndex, k: int) -> None:
    with pytest.raises(ValueError, match="k must be"):
        index.nearest("refund", k)


def test_hostile_and_oversized_queries_are_bounded(index: CaseIndex) -> None:
    assert index.nearest("\x00" * 10_000, 5) == []
    assert index.nearest("請求" * 500_000, 5)[0][0] == "double"


def test_empty_cases_and_unusable_texts_do_not_break_the_index() -> None:
    assert CaseIndex([]).nearest("refund", 5) == []
    cases = [ResolvedCase("blank", "", ""), ResolvedCase("phone", "090-1234-5678", ""), *CASES]
    index = CaseIndex(cases)
    assert len(index) == len(CASES)
    assert index.nearest("app crash", 1)[0][0] == "crash"


def test_a_repeated_case_id_keeps_its_first_entry() -> None:
    index = CaseIndex([CASES[0], ResolvedCase("double", "app crash", "other")])
    assert index.resolution_note("double") == CASES[0].resolution_note
    assert index.nearest("app crash", 5) == []


def test_knowledge_articles_are_found_by_title_and_body_in_either_language() -> None:
    base = KnowledgeBase(
        [
            Article("kb-1", "二重請求の返金", "決済の重複を確認し、片方を取り消して返金する"),
            Article("kb-2", "Password reset", "Send a new reset link; check the spam folder"),
            Article("kb-3", "Late delivery", "Check tracking; re-ship by express after 5 days"),
        ]
    )
    assert base.search("double charge refund", 1)[0][0] == "kb-1"
    assert base.search("パスワードを忘れた", 1)[0][0] == "kb-2"
    assert base.search("荷物が届かない")[0][0] == "kb-3"
    assert base.search("Hello!") == []
    with pytest.raises(ValueError, match="k must be"):
        base.search("refund", 0)
