"""Helpers the channel normalisers share: phone numbers and derived identifiers."""

from __future__ import annotations

from tsunagu.identifiers import IdentifierFormatError, normalize_phone
from tsunagu.v1 import interaction_pb2


def phone_key(raw: str, *, region: str) -> tuple[str, bool] | None:
    """Normalise a channel's phone number, or tell that it is not one.

    Args:
        raw: Number as the channel gave it (may be "anonymous" for a withheld caller id).
        region: Default region for national formats.

    Returns:
        `(value, matchable)` as `normalize_phone` gives, or None when it is not a number.
    """
    try:
        return normalize_phone(raw, default_region=region)
    except IdentifierFormatError:
        return None


def e164_if_valid(raw: str, *, region: str) -> str:
    """Rewrite a number to E.164 when it is a valid number, else keep it (trimmed) as given.

    Args:
        raw: Number as the channel gave it.
        region: Default region for national formats.

    Returns:
        The E.164 form of a valid number, otherwise `raw.strip()`: agents still see what the
        carrier sent (a short code, an alphanumeric sender id, "anonymous").
    """
    key = phone_key(raw, region=region)
    if key is not None and key[1]:
        return key[0]
    return raw.strip()


def add_identifier(
    interaction: interaction_pb2.Interaction,
    kind: interaction_pb2.IdentifierKind.ValueType,
    value: str,
    *,
    network: str = "",
    verified: bool = False,
) -> None:
    """Append a channel-derived identifier; duplicates are removed later by the pipeline.

    Args:
        interaction: Interaction being normalised (mutated).
        kind: Identifier kind.
        value: Already-normalised value, so that the pipeline's normalisation is a no-op.
        network: Social network, for social handles.
        verified: The channel itself vouches for it (a caller id the network delivered).
    """
    interaction.identifiers.add(kind=kind, value=value, network=network, verified=verified)
