"""The labelled bilingual data set, clustered: agreement with people's labels has a floor.

Measured when the floor was set (LSA 30 dimensions, average linkage cut at cosine distance
0.85, the glossary on): 13 topics for 10 labels, V-measure 0.77, adjusted Rand 0.69. The
sweep over 20-40 dimensions and thresholds 0.80-0.90 stays within 0.75-0.80 (V) and 0.69-0.73
(ARI), so the floors sit a safe margin below the worst of them: a change that loses the
bilingual glossary (V 0.55, ARI 0.29 measured), the masking or the stop words falls through them.
"""

from __future__ import annotations

from collections import Counter

import pytest
from sklearn.metrics import adjusted_rand_score, v_measure_score

from services.insights.similar import CaseIndex, ResolvedCase
from services.insights.topics import Message, TopicModel, build_topics
from tests.unit.voc_data import labelled

V_MEASURE_FLOOR = 0.70
ADJUSTED_RAND_FLOOR = 0.60


@pytest.fixture(scope="module")
def model() -> TopicModel:
    return build_topics([item.message for item in labelled()])


def test_the_data_set_is_what_the_issue_asks_for() -> None:
    items = labelled()
    assert len(items) >= 300
    topics = Counter(item.topic for item in items)
    assert len(topics) >= 8
    assert min(topics.values()) >= 25
    languages = Counter(item.message.language for item in items)
    assert set(languages) == {"ja", "en"}
    assert min(languages.values()) >= 0.4 * len(items)
    assert len({item.message.id for item in items}) == len(items)


def test_clusters_agree_with_peoples_labels_above_the_floor(model: TopicModel) -> None:
    topic_of = {m: t.id for t in model.topics for m in t.member_ids}
    items = labelled()
    truth = [item.topic for item in items]
    found = [topic_of.get(item.message.id, "no topic") for item in items]
    assert v_measure_score(truth, found) >= V_MEASURE_FLOOR
    assert adjusted_rand_score(truth, found) >= ADJUSTED_RAND_FLOOR


def test_most_subjects_gather_japanese_and_english_messages_in_one_topic(
    model: TopicModel,
) -> None:
    topic_of = {m: t.id for t in model.topics for m in t.member_ids}
    bilingual = 0
    subjects = {item.topic for item in labelled()}
    for subject in subjects:
        members = [i for i in labelled() if i.topic == subject and i.message.id in topic_of]
        main, _ = Counter(topic_of[i.message.id] for i in members).most_common(1)[0]
        languages = {i.message.language for i in members if topic_of[i.message.id] == main}
        bilingual += languages == {"ja", "en"}
    assert bilingual >= len(subjects) - 1


def test_no_topic_term_carries_a_digit_an_address_or_a_name(model: TopicModel) -> None:
    forbidden = {"john", "smith", "hanako", "example", "baker", "london", "佐藤", "鈴木", "田中"}
    for topic in model.topics:
        assert not forbidden.intersection(topic.terms), topic.terms
        assert not any(ch.isdigit() for term in topic.terms for ch in term), topic.terms


def test_thousands_of_messages_condense_first_and_still_agree_with_the_labels() -> None:
    # Six copies of the data set with other sign-offs: past 1,600 messages k-means condenses
    # them before the threshold merges (measured V 0.74 when written).
    items = [
        (Message(f"{copy}-{i.message.id}", f"{i.message.text} {closing}"), i.topic)
        for copy, closing in enumerate(["Thanks", "よろしくお願いします", "", "Regards, Ken"] * 2)
        for i in labelled()
    ][: 6 * len(labelled())]
    assert len(items) > 1600
    model = build_topics([m for m, _ in items])
    truth = [topic for _, topic in items]
    found = [model.topic_of(m.id) or "no topic" for m, _ in items]
    assert v_measure_score(truth, found) >= V_MEASURE_FLOOR - 0.05


def test_the_nearest_other_message_mostly_shares_the_label() -> None:
    # Leave-one-out over the data set: measured 80% when written.
    items = labelled()
    index = CaseIndex([ResolvedCase(i.message.id, i.message.text, "") for i in items])
    label = {i.message.id: i.topic for i in items}
    same = 0
    for item in items:
        hits = index.nearest(item.message.text, 1, exclude={item.message.id})
        same += bool(hits) and label[hits[0][0]] == item.topic
    assert same / len(items) >= 0.7
