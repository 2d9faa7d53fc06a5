"""An interaction's presented identifiers: normalised once per typed identifier and region."""

from __future__ import annotations

import pytest

from services.timeline.identity import presented as module
from services.timeline.identity.policy import IdentityPolicy
from services.timeline.identity.presented import Normalised, presented
from tests import builders
from tsunagu.identifiers import normalize_identifier
from tsunagu.v1 import interaction_pb2 as pb


def test_a_batch_normalises_each_identifier_once_per_region_with_the_same_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def counting(identifier: pb.Identifier, *, default_region: str) -> object:
        calls.append(f"{default_region}:{identifier.value}")
        return normalize_identifier(identifier, default_region=default_region)

    monkeypatch.setattr(module, "normalize_identifier", counting)
    first, again = (builders.call("acme", from_number="090-1234-5678") for _ in range(2))
    for interaction in (first, again):
        interaction.identifiers.add(kind=pb.IDENTIFIER_KIND_PHONE, value="090-1234-5678")
    japan, us = IdentityPolicy("JP"), IdentityPolicy("US")
    normalised: Normalised = {}

    alone = presented(again, japan)
    calls.clear()
    shared = [presented(i, japan, normalised=normalised) for i in (first, again)]

    assert shared[0] == shared[1] == alone
    assert [p.key for p in alone] == [("phone", "+819012345678")]
    assert calls == ["JP:090-1234-5678"]
    # The same digits read in another region are another number: normalised for it.
    presented(again, us, normalised=normalised)
    assert calls == ["JP:090-1234-5678", "US:090-1234-5678"]
