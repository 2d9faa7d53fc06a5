"""Voice of the customer: topic quality on the labelled data set, rebuild time, assignment.

- V-measure and adjusted Rand index of `build_topics` against the data set's labels
  (tests/data/voc_messages.jsonl); the baseline is the same clustering without the bilingual
  glossary, measured in the same run.
- Rebuild time for `rebuild_messages` messages drawn from the data set with fresh noise
  (order numbers, greetings, signatures); the baseline is vectorising alone (cleaning,
  Sudachi, TF-IDF) over the same messages.
- Similar cases: leave-one-out over the data set, the share of messages whose nearest other
  message (`CaseIndex.nearest`) has the same label; the baseline is without the glossary.
- Assignment: a model built on 70% of the data set places the other 30% with `assign`: the
  share placed, and the share placed in the topic holding most of its label's messages.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_rand_score, v_measure_score

from bench.targets import Row
from services.insights.similar import CaseIndex, ResolvedCase
from services.insights.text import features, glossary
from services.insights.topics import Message, TopicModel, build_topics

DATA_SET = Path(__file__).parent.parent / "tests" / "data" / "voc_messages.jsonl"
# The floors tests/unit/test_voc_dataset.py asserts; the table shows them as the bound.
V_MEASURE_FLOOR = 0.70
ADJUSTED_RAND_FLOOR = 0.60
NEAREST_FLOOR = 0.7
_SEED = 7
_OPENINGS = ("", "お世話になっております。", "Hi team, ", "Hello, ", "こんにちは。")
_CLOSINGS = ("", " よろしくお願いします。", " Thanks, Alex", " Sent from my iPhone", " -- 山本")


def _labelled() -> list[tuple[Message, str]]:
    rows = [json.loads(line) for line in DATA_SET.read_text(encoding="utf-8").splitlines()]
    return [(Message(r["id"], r["text"], r["language"]), r["topic"]) for r in rows]


def _agreement(model: TopicModel, labelled: Sequence[tuple[Message, str]]) -> tuple[float, float]:
    topic_of = {m: t.id for t in model.topics for m in t.member_ids}
    truth = [label for _, label in labelled]
    found = [topic_of.get(message.id, "no topic") for message, _ in labelled]
    return float(v_measure_score(truth, found)), float(adjusted_rand_score(truth, found))


def _noisy(labelled: Sequence[tuple[Message, str]], count: int) -> list[Message]:
    rng = random.Random(_SEED)  # noqa: S311 - a load shape, not a secret
    messages = []
    for i in range(count):
        message, _ = rng.choice(labelled)
        order = f" 注文番号 A-{rng.randrange(10**7):07d}" if rng.random() < 0.3 else ""
        body = f"{rng.choice(_OPENINGS)}{message.text}{order}{rng.choice(_CLOSINGS)}"
        messages.append(Message(f"bench-{i}", body))
    return messages


def _vectorise_only(messages: Sequence[Message]) -> None:
    documents = [f for m in messages if (f := features(m.text))]
    TfidfVectorizer(analyzer=lambda d: d, sublinear_tf=True).fit_transform(documents)


def _assignment(labelled: Sequence[tuple[Message, str]]) -> dict[str, float]:
    shuffled = list(labelled)
    random.Random(_SEED).shuffle(shuffled)  # noqa: S311 - a sample, not a secret
    cut = int(len(shuffled) * 0.7)
    model = build_topics([m for m, _ in shuffled[:cut]])
    topic_of = {m: t.id for t in model.topics for m in t.member_ids}
    home = {
        label: Counter(
            topic_of[m.id] for m, lab in shuffled[:cut] if lab == label and m.id in topic_of
        ).most_common(1)[0][0]
        for label in {lab for _, lab in shuffled}
    }
    held_out = shuffled[cut:]
    started = time.perf_counter()
    placed = [(model.assign(m.text), label) for m, label in held_out]
    elapsed = time.perf_counter() - started
    return {
        "held_out": len(held_out),
        "assigned": sum(t is not None for t, _ in placed) / len(held_out),
        "to_its_label_topic": sum(t == home[label] for t, label in placed) / len(held_out),
        "ms_per_message": elapsed * 1000 / len(held_out),
    }


def _nearest_shares_label(labelled: Sequence[tuple[Message, str]]) -> float:
    index = CaseIndex([ResolvedCase(m.id, m.text, "") for m, _ in labelled])
    label = {m.id: lab for m, lab in labelled}
    same = 0
    for message, lab in labelled:
        hits = index.nearest(message.text, 1, exclude={message.id})
        same += bool(hits) and label[hits[0][0]] == lab
    return same / len(labelled)


def measure(rebuild_messages: int) -> dict[str, Any]:
    """Every VOC figure, as JSON-ready data."""
    labelled = _labelled()
    model = build_topics([m for m, _ in labelled])
    v, ari = _agreement(model, labelled)
    # The baseline: the same clustering when no word names a shared concept.
    with mock.patch.dict(glossary.GLOSSARY, clear=True):
        plain_v, plain_ari = _agreement(build_topics([m for m, _ in labelled]), labelled)
        plain_nearest = _nearest_shares_label(labelled)
    noisy = _noisy(labelled, rebuild_messages)
    started = time.perf_counter()
    _vectorise_only(noisy)
    vectorise_s = time.perf_counter() - started
    started = time.perf_counter()
    rebuilt = build_topics(noisy)
    rebuild_s = time.perf_counter() - started
    return {
        "messages": len(labelled),
        "labels": len({label for _, label in labelled}),
        "topics": len(model.topics),
        "v_measure": v,
        "adjusted_rand": ari,
        "nearest_shares_label": _nearest_shares_label(labelled),
        "without_glossary": {
            "v_measure": plain_v,
            "adjusted_rand": plain_ari,
            "nearest_shares_label": plain_nearest,
        },
        "rebuild": {
            "messages": rebuild_messages,
            "seconds": rebuild_s,
            "vectorise_seconds": vectorise_s,
            "topics": len(rebuilt.topics),
        },
        "assignment": _assignment(labelled),
    }


def rows(result: dict[str, Any]) -> list[Row]:
    """The VOC rows of the table (issue 13, item 7)."""
    voc = result["voc"]
    plain, rebuild, assigned = voc["without_glossary"], voc["rebuild"], voc["assignment"]
    agreement = [
        Row(
            target,
            f"{voc[key]:.3f}",
            f"no glossary {plain[key]:.3f}",
            voc[key] / plain[key] if plain[key] else None,
            f"≥ {floor} (test floor)",
            voc[key] >= floor,
        )
        for target, key, floor in (
            (
                f"voc: V-measure, {voc['messages']} labelled msgs → {voc['topics']} topics",
                "v_measure",
                V_MEASURE_FLOOR,
            ),
            ("voc: adjusted Rand index on the data set", "adjusted_rand", ADJUSTED_RAND_FLOOR),
            (
                "similar cases: nearest other message shares the label",
                "nearest_shares_label",
                NEAREST_FLOOR,
            ),
        )
    ]
    return [
        *agreement,
        Row(
            f"voc: topic rebuild, {rebuild['messages']:,} messages",
            f"{rebuild['seconds']:.2f} s",
            f"vectorising alone {rebuild['vectorise_seconds']:.2f} s",
            rebuild["seconds"] / rebuild["vectorise_seconds"],
            "report",
            None,
        ),
        Row(
            f"voc: new messages placed by assign ({assigned['held_out']} held out)",
            f"{assigned['assigned']:.0%} placed, {assigned['to_its_label_topic']:.0%} right",
            f"{assigned['ms_per_message']:.2f} ms/msg",
            None,
            "report",
            None,
        ),
    ]
