"""The labelled bilingual VOC data set (tests/data/voc_messages.jsonl), loaded for tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from services.insights.topics import Message

DATA_SET = Path(__file__).parent.parent / "data" / "voc_messages.jsonl"


@dataclass(frozen=True, slots=True)
class Labelled:
    """One message of the data set with the topic a person gave it."""

    message: Message
    topic: str


def labelled() -> list[Labelled]:
    """Every message of the data set, in file order."""
    rows = [json.loads(line) for line in DATA_SET.read_text(encoding="utf-8").splitlines()]
    return [Labelled(Message(r["id"], r["text"], r["language"]), r["topic"]) for r in rows]
