"""Topics: built from few messages, stable across rebuilds, renamed, merged, persisted."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from services.insights.text import features
from services.insights.topics import Message, Topic, TopicModel, build_topics
from tests.unit.voc_data import Labelled, labelled


def _sample(per_topic: int) -> list[Labelled]:
    taken: dict[str, int] = {}
    chosen = []
    for item in labelled():
        if taken.get(item.topic, 0) < per_topic:
            taken[item.topic] = taken.get(item.topic, 0) + 1
            chosen.append(item)
    return chosen


def _topic_holding(model: TopicModel, message_id: str) -> Topic:
    return next(t for t in model.topics if message_id in t.member_ids)


@pytest.fixture(scope="module")
def model() -> TopicModel:
    return build_topics([item.message for item in labelled()])


def test_twenty_messages_give_several_readable_topics() -> None:
    sample = _sample(2)
    assert len(sample) == 20
    model = build_topics([item.message for item in sample])
    # Two messages on each of ten subjects: measured 8 to 13 topics over shuffled samples.
    assert 4 <= len(model.topics) <= 15
    assert sum(t.size for t in model.topics) == 20
    for topic in model.topics:
        assert topic.label
        assert topic.terms
        assert topic.example_ids
        assert set(topic.example_ids) <= set(topic.member_ids)


def test_labels_are_words_without_personal_data(model: TopicModel) -> None:
    for topic in model.topics:
        for term in topic.terms:
            assert not re.search(r"\d|@|<|≈", term), topic
            assert len(term) >= 2 or re.match(r"[\u3400-\u9fff]", term), topic


def test_topics_are_listed_largest_first_and_hold_each_message_once(model: TopicModel) -> None:
    sizes = [t.size for t in model.topics]
    assert sizes == sorted(sizes, reverse=True)
    members = [m for t in model.topics for m in t.member_ids]
    placeable = {i.message.id for i in labelled() if features(i.message.text)}
    assert len(members) == len(set(members)) == len(placeable)
    assert set(members) == placeable


def test_each_built_message_knows_its_topic(model: TopicModel) -> None:
    crash = _topic_holding(model, "app_crash-00")
    assert model.topic_of("app_crash-00") == crash.id
    assert model.topic_of("never-seen") is None


def test_a_new_message_gets_the_topic_of_its_kind_without_a_rebuild(model: TopicModel) -> None:
    late = _topic_holding(model, "delivery_delay-00")
    crash = _topic_holding(model, "app_crash-00")
    assert model.assign("まだ荷物が届かないのですが、配送状況を教えてください") == late.id
    assert model.assign("The app crashes whenever I open it") == crash.id


@pytest.mark.parametrize("text", ["", "Hello!", "090-1234-5678", "よろしくお願いします"])
def test_a_message_with_nothing_to_place_gets_no_topic(model: TopicModel, text: str) -> None:
    assert model.assign(text) is None


def test_a_rebuild_keeps_ids_and_a_supervisors_name(model: TopicModel) -> None:
    crash = _topic_holding(model, "app_crash-00")
    renamed = model.rename(crash.id, "  App   crashes ")
    assert renamed.topic(crash.id) is not None
    assert renamed.topic(crash.id).label == "App crashes"  # type: ignore[union-attr]
    more = [item.message for item in labelled()] + [
        Message("new-1", "アプリが起動直後に落ちます"),
        Message("new-2", "the app froze and closed on the payment screen"),
    ]
    rebuilt = build_topics(more, previous=renamed.topics)
    again = _topic_holding(rebuilt, "app_crash-00")
    assert again.id == crash.id
    assert again.label == "App crashes"
    assert again.named
    kept = {t.id for t in model.topics} & {t.id for t in rebuilt.topics}
    assert len(kept) >= len(model.topics) - 1


def test_merge_adds_up_and_the_old_id_resolves_to_the_merged_topic(model: TopicModel) -> None:
    into, other = model.topics[0], model.topics[1]
    merged = model.merge(into.id, other.id)
    topic = merged.topic(other.id)
    assert topic is not None
    assert topic.id == into.id
    assert topic.size == into.size + other.size
    assert set(topic.member_ids) == set(into.member_ids) | set(other.member_ids)
    assert len(merged.topics) == len(model.topics) - 1
    assert other.id in topic.merged_ids


def test_a_rebuild_keeps_a_supervisors_merge(model: TopicModel) -> None:
    login = _topic_holding(model, "login-00")
    crash = _topic_holding(model, "app_crash-00")
    assert login.id != crash.id
    merged = model.merge(login.id, crash.id)
    rebuilt = build_topics([item.message for item in labelled()], previous=merged.topics)
    assert _topic_holding(rebuilt, "login-00").id == _topic_holding(rebuilt, "app_crash-00").id
    assert rebuilt.topic(crash.id) is not None


@pytest.mark.parametrize(
    ("into", "other", "error"),
    [("nope", None, KeyError), (None, "nope", KeyError), (None, None, ValueError)],
)
def test_merging_unknown_or_identical_topics_is_refused(
    model: TopicModel, into: str | None, other: str | None, error: type[Exception]
) -> None:
    first = model.topics[0].id
    with pytest.raises(error):
        model.merge(into or first, other or first)


def test_renaming_to_blank_or_an_unknown_topic_is_refused(model: TopicModel) -> None:
    with pytest.raises(ValueError, match="blank"):
        model.rename(model.topics[0].id, "   ")
    with pytest.raises(KeyError):
        model.rename("nope", "Name")


def test_a_model_survives_bytes_and_assigns_the_same(model: TopicModel) -> None:
    restored = TopicModel.from_bytes(model.to_bytes())
    assert restored == model
    text = "パスワードを忘れてログインできません"
    assert restored.assign(text) == model.assign(text) is not None


def _document(model: TopicModel) -> dict[str, object]:
    document: dict[str, object] = json.loads(model.to_bytes())
    return document


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda _: b"",
        lambda _: b"{",
        lambda _: b"\xff\xfe",
        lambda _: b"[]",
        lambda d: json.dumps({**d, "version": 99}).encode(),
        lambda d: json.dumps({**d, "extra": 1}).encode(),
        lambda d: json.dumps({**d, "idf": {"a": -1}}).encode(),
        lambda d: json.dumps({**d, "idf": {"a": float("nan")}}).encode(),
        lambda d: json.dumps({**d, "topics": [d["topics"][0], d["topics"][0]]}).encode(),
        lambda d: json.dumps({**d, "topics": [{**d["topics"][0], "size": -1}]}).encode(),
        lambda d: json.dumps(
            {**d, "topics": [{**d["topics"][0], "centroid": {"a": 1e999}}]}
        ).encode(),
    ],
)
def test_malformed_or_hostile_bytes_are_refused(model: TopicModel, corrupt: object) -> None:
    data = corrupt(_document(model))  # type: ignore[operator]
    with pytest.raises(ValueError, match="topic model"):
        TopicModel.from_bytes(data)


def test_unusable_messages_do_not_take_good_ones_down() -> None:
    good = [item.message for item in _sample(3)]
    bad = [
        Message("empty", ""),
        Message("phone", "090-1234-5678"),
        Message("huge", "x" * 1_000_000),
        Message("nul", "\x00" * 100),
        dataclasses.replace(good[0], text="a repeat of an id keeps the first text"),
    ]
    model = build_topics(bad + good)
    members = {m for t in model.topics for m in t.member_ids}
    assert members == {m.id for m in good}


@pytest.mark.parametrize("count", [0, 1])
def test_fewer_than_two_usable_messages_give_no_topics(count: int) -> None:
    messages = [Message(f"m{i}", "荷物が届かない") for i in range(count)]
    model = build_topics([*messages, Message("greeting", "Hello!")])
    assert model.topics == ()
    assert model.assign("荷物が届かない") is None


def test_messages_made_only_of_everyday_terms_do_not_break_a_build() -> None:
    # Every term of the first thirty is in most messages: their rows come out empty.
    same = [Message(f"same-{i}", "返金してください") for i in range(30)]
    other = [Message(f"other-{i}", f"アプリが落ちる 画面 {w}") for i, w in enumerate("abc")]
    model = build_topics(same + other)
    members = {m for t in model.topics for m in t.member_ids}
    assert members == {m.id for m in same + other}


def test_messages_that_all_say_the_same_thing_are_one_topic_not_a_failed_build() -> None:
    # Every term is in every message: TF-IDF's pruning of terms in most messages leaves none.
    messages = [Message(f"m{i}", "My parcel has not arrived yet") for i in range(30)]
    model = build_topics(messages)
    assert len(model.topics) == 1
    assert len(model.topics[0].member_ids) == 30
