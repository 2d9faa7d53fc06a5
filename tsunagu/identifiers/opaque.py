"""Opaque, tenant-scoped identifiers (chat visitor, chat login, CRM id): trimmed, case kept."""

from __future__ import annotations

from tsunagu.identifiers.errors import IdentifierFormatError
from tsunagu.identifiers.text import has_control

MAX_OPAQUE_CHARS = 256


def normalize_opaque(raw: str) -> str:
    """Normalise an opaque identifier: trim it, and nothing else (case is significant).

    Args:
        raw: The identifier as the channel or CRM produced it.

    Returns:
        The trimmed identifier.

    Raises:
        IdentifierFormatError: Empty after trimming, longer than 256 characters, or
            containing control characters.
    """
    value = raw.strip()
    if not value:
        raise IdentifierFormatError("identifier is empty")
    if len(value) > MAX_OPAQUE_CHARS:
        raise IdentifierFormatError(f"identifier longer than {MAX_OPAQUE_CHARS} characters")
    if has_control(value):
        raise IdentifierFormatError("identifier contains control characters")
    return value
