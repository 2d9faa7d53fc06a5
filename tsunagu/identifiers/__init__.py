"""Identifier normalisation shared by ingestion and the timeline (E.164, e-mail, handles)."""

from __future__ import annotations

from tsunagu.identifiers.email import normalize_email
from tsunagu.identifiers.errors import IdentifierFormatError
from tsunagu.identifiers.normalize import NormalizedIdentifier, normalize_identifier
from tsunagu.identifiers.phone import normalize_phone
from tsunagu.identifiers.social import normalize_social_handle

__all__ = [
    "IdentifierFormatError",
    "NormalizedIdentifier",
    "normalize_email",
    "normalize_identifier",
    "normalize_phone",
    "normalize_social_handle",
]
