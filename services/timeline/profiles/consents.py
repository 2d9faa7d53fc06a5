"""Consent per channel x purpose on a profile: the most recent decision wins (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from services.timeline.store.documents import KIND_TOKENS, aware, channel_token
from tsunagu.v1 import interaction_pb2 as pb

ConsentDoc = dict[str, Any]
"""One current decision: channel, purpose, granted, source, changed_at, event_id.

Only non-personal values: the customer's words (the evidence) stay on the interaction, which
is stored (and encrypted) like every other text.
"""


CONSENT_CHANGE_KIND = KIND_TOKENS[pb.KIND_CONSENT_CHANGE]
"""How the log stores the kind of a consent change."""


def purpose_token(purpose: int) -> str:
    """`CONSENT_PURPOSE_MARKETING` → `marketing`."""
    return (
        pb.ConsentPurpose.Name(pb.ConsentPurpose.ValueType(purpose))
        .removeprefix("CONSENT_PURPOSE_")
        .lower()
    )


def source_token(source: int) -> str:
    """`CONSENT_SOURCE_WEB_FORM` → `web_form`."""
    return (
        pb.ConsentSource.Name(pb.ConsentSource.ValueType(source))
        .removeprefix("CONSENT_SOURCE_")
        .lower()
    )


def consent_key(channel: str, purpose: str) -> str:
    """Key of `customers.consents` (no dots: a stored field name)."""
    return f"{channel}:{purpose}"


def consent_of(interaction: pb.Interaction, *, occurred_at: datetime) -> ConsentDoc | None:
    """The decision a KIND_CONSENT_CHANGE interaction records (None for other kinds)."""
    if interaction.kind != pb.KIND_CONSENT_CHANGE or not interaction.HasField("consent"):
        return None
    change = interaction.consent
    return {
        "channel": channel_token(change.channel),
        "purpose": purpose_token(change.purpose),
        "granted": change.granted,
        "source": source_token(change.source),
        "changed_at": aware(occurred_at),
        "event_id": interaction.event_id,
    }


def _newer(candidate: Mapping[str, Any], kept: Mapping[str, Any] | None) -> bool:
    """Whether `candidate` replaces `kept`: later wins; at the same instant, a withdrawal
    wins (when in doubt, do not contact), then the larger event id (deterministic).
    """
    if kept is None:
        return True
    ours = (aware(candidate["changed_at"]), not candidate["granted"], candidate["event_id"])
    theirs = (aware(kept["changed_at"]), not kept["granted"], kept["event_id"])
    return ours > theirs


def combined_consents(*groups: Mapping[str, ConsentDoc]) -> dict[str, ConsentDoc]:
    """Current consents of several profiles (a merge, a recount): per channel x purpose, the
    most recent decision of any of them wins.
    """
    combined: dict[str, ConsentDoc] = {}
    for group in groups:
        for key, decision in group.items():
            if _newer(decision, combined.get(key)):
                combined[key] = dict(decision)
    return combined


def consents_from(decisions: Iterable[ConsentDoc]) -> dict[str, ConsentDoc]:
    """Current consents from decisions in any order (a split recounts them from the log)."""
    return combined_consents(*({consent_key(d["channel"], d["purpose"]): d} for d in decisions))


def with_consent(consents: Mapping[str, ConsentDoc], decision: ConsentDoc) -> dict[str, ConsentDoc]:
    """`consents` after one more decision (an older one arriving late changes nothing)."""
    return combined_consents(
        consents, {consent_key(decision["channel"], decision["purpose"]): decision}
    )


def permits(consents: Mapping[str, ConsentDoc], channel: str, purpose: str) -> bool:
    """Whether the customer has granted `channel` x `purpose` and not withdrawn it since."""
    decision = consents.get(consent_key(channel, purpose))
    return bool(decision and decision["granted"])
