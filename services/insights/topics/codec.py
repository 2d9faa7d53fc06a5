"""A topic model as versioned JSON, validated on the way in (it may come from anywhere)."""

from __future__ import annotations

import json
import math

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.insights.topics.model import Topic, TopicModel

VERSION = 1


def _weights(weights: dict[str, float]) -> dict[str, float]:
    if not all(math.isfinite(w) and w >= 0 for w in weights.values()):
        raise ValueError("weights must be finite and not negative")
    return weights


class _Topic(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    label: str = Field(max_length=500)
    terms: tuple[str, ...]
    size: int = Field(ge=0)
    example_ids: tuple[str, ...]
    member_ids: tuple[str, ...]
    named: bool = False
    merged_ids: tuple[str, ...] = ()
    centroid: dict[str, float]

    _finite = field_validator("centroid")(_weights)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    idf: dict[str, float]
    topics: tuple[_Topic, ...]

    @field_validator("version")
    @classmethod
    def _known(cls, version: int) -> int:
        if version != VERSION:
            raise ValueError(f"topic model version {version}, this code reads {VERSION}")
        return version

    _finite = field_validator("idf")(_weights)


def encode(model: TopicModel) -> bytes:
    """`model` as UTF-8 JSON."""
    topics = [
        {
            "id": t.id,
            "label": t.label,
            "terms": t.terms,
            "size": t.size,
            "example_ids": t.example_ids,
            "member_ids": t.member_ids,
            "named": t.named,
            "merged_ids": t.merged_ids,
            "centroid": dict(model.centroids[t.id]),
        }
        for t in model.topics
    ]
    document = {"version": VERSION, "idf": dict(model.idf), "topics": topics}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def decode(data: bytes) -> TopicModel:
    """The model in `data`.

    Raises:
        ValueError: Not valid JSON, not this shape, an unknown version, or non-finite weights.
    """
    try:
        parsed = _Model.model_validate_json(data)
    except ValidationError as error:
        raise ValueError(f"not a topic model: {error.error_count()} problem(s)") from error
    if len({t.id for t in parsed.topics}) != len(parsed.topics):
        raise ValueError("not a topic model: topic ids repeat")
    topics = tuple(Topic(**t.model_dump(exclude={"centroid"})) for t in parsed.topics)
    centroids = {t.id: t.centroid for t in parsed.topics}
    return TopicModel(topics=topics, idf=parsed.idf, centroids=centroids)
