"""Normalisation of typed `Identifier` messages into matching keys."""

from __future__ import annotations

from dataclasses import dataclass

from tsunagu.identifiers.email import normalize_email
from tsunagu.identifiers.errors import IdentifierFormatError
from tsunagu.identifiers.opaque import normalize_opaque
from tsunagu.identifiers.phone import normalize_phone
from tsunagu.identifiers.social import normalize_handle, normalize_network
from tsunagu.v1 import interaction_pb2

_OPAQUE_KINDS = frozenset(
    {
        interaction_pb2.IDENTIFIER_KIND_CHAT_VISITOR,
        interaction_pb2.IDENTIFIER_KIND_CHAT_LOGIN,
        interaction_pb2.IDENTIFIER_KIND_EXTERNAL_CRM_ID,
    }
)


@dataclass(frozen=True, slots=True)
class NormalizedIdentifier:
    """An identifier reduced to the key identity resolution matches on.

    Attributes:
        kind: `interaction_pb2.IdentifierKind` value.
        value: Canonical key used for matching (`+819012345678`, `taro@example.jp`,
            `x:taro_y`, or the trimmed opaque id).
        matchable: False when the value is kept on the record but must never link customers
            (e.g. a phone number that parses but is not a valid number).
    """

    kind: int
    value: str
    matchable: bool


def normalize_identifier(
    identifier: interaction_pb2.Identifier, *, default_region: str
) -> NormalizedIdentifier:
    """Normalise one typed identifier.

    Social handles take their network from `identifier.network`; when that is empty, a value
    already in key form (`"x:taro_y"`) is accepted too, so that a normalised value normalises
    to itself.

    Args:
        identifier: The identifier as the channel saw it.
        default_region: Region for phone numbers written without a country code.

    Returns:
        The normalised identifier.

    Raises:
        IdentifierFormatError: The kind is unspecified or unknown, or the value (or network)
            cannot be normalised; `part` says which field is at fault.
    """
    kind = identifier.kind
    if kind == interaction_pb2.IDENTIFIER_KIND_EMAIL:
        return NormalizedIdentifier(kind, normalize_email(identifier.value), matchable=True)
    if kind == interaction_pb2.IDENTIFIER_KIND_PHONE:
        value, matchable = normalize_phone(identifier.value, default_region=default_region)
        return NormalizedIdentifier(kind, value, matchable)
    if kind == interaction_pb2.IDENTIFIER_KIND_SOCIAL_HANDLE:
        network, handle = identifier.network, identifier.value
        if not network.strip() and ":" in handle:
            network, handle = handle.split(":", 1)
        key = f"{normalize_network(network)}:{normalize_handle(handle)}"
        return NormalizedIdentifier(kind, key, matchable=True)
    if kind in _OPAQUE_KINDS:
        return NormalizedIdentifier(kind, normalize_opaque(identifier.value), matchable=True)
    if kind == interaction_pb2.IDENTIFIER_KIND_UNSPECIFIED:
        raise IdentifierFormatError("identifier kind is unspecified", part="kind")
    raise IdentifierFormatError(f"unknown identifier kind {kind}", part="kind")
