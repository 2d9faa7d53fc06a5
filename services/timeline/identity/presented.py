"""The identifiers an interaction presents: normalised, keyed by the tenant's policy."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.timeline.identity.policy import INVALID, IdentityKey, IdentityPolicy
from services.timeline.store.documents import IdentifierDoc
from tsunagu.identifiers import IdentifierFormatError, NormalizedIdentifier, normalize_identifier
from tsunagu.v1 import interaction_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Presented:
    """One identifier of an interaction, with the key identity resolution matches on."""

    key: IdentityKey
    identifier: NormalizedIdentifier
    network: str
    # The channel vouched for it (signed-in user, caller id, replied-to address).
    verified: bool = False

    def document(self, protected: str | None) -> IdentifierDoc:
        """As stored on the interaction and the profile; `protected` says why it matched
        nobody ("blocklisted", "shared"), if so.
        """
        kind, value = self.key
        doc: IdentifierDoc = {"kind": kind, "value": value}
        if self.network:
            doc["network"] = self.network
        if self.verified:
            doc["verified"] = True
        if not self.identifier.matchable:
            doc["matchable"] = False
            doc["protected"] = INVALID
        elif protected:
            doc["matchable"] = False
            doc["protected"] = protected
        return doc


# An identifier as typed (region, kind, value, network) → its normal form: the same number
# or address recurs in one customer's events, and parsing a phone number is the dear part.
Normalised = dict[tuple[str, int, str, str], NormalizedIdentifier]


def presented(
    interaction: interaction_pb2.Interaction,
    policy: IdentityPolicy,
    *,
    normalised: Normalised | None = None,
) -> list[Presented]:
    """The interaction's identifiers that normalise (others are logged and left out).

    `normalised`: identifiers worked out before (a batch's), reused and added to.
    """
    result = []
    for ident in interaction.identifiers:
        typed = (policy.region, ident.kind, ident.value, ident.network)
        normalized = normalised.get(typed) if normalised is not None else None
        if normalized is None:
            try:
                normalized = normalize_identifier(ident, default_region=policy.region)
            except IdentifierFormatError as exc:
                # Ingestion rejects these; one from another producer is kept off the match.
                log.warning("ignoring identifier of event %s: %s", interaction.event_id, exc)
                continue
            if normalised is not None:
                normalised[typed] = normalized
        result.append(Presented(policy.key(normalized), normalized, ident.network, ident.verified))
    return result


def matchable_keys(identifiers: list[Presented]) -> list[IdentityKey]:
    """Keys resolution may match on, each once, in the order presented."""
    return list(dict.fromkeys(p.key for p in identifiers if p.identifier.matchable))


def verified_keys(identifiers: list[Presented]) -> frozenset[IdentityKey]:
    """Keys of identifiers the channel verified (an unverified sighting adds nothing)."""
    return frozenset(p.key for p in identifiers if p.verified and p.identifier.matchable)
