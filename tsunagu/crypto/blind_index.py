"""Keyed hashes of normalised identifiers, so matching works without the plaintext."""

from __future__ import annotations

import hashlib
import hmac


def blind_index(key: bytes, *, kind: str, value: str) -> str:
    """The blind index of one normalised identifier.

    An HMAC rather than a plain hash: phone numbers and e-mail addresses are few enough to
    enumerate, so an unkeyed hash of them is a lookup table away from the plaintext.

    Args:
        key: The tenant's index key (never a data key: erasure must not change it, or
            suppression could not recognise an erased identifier).
        kind: Identifier kind token (`phone`, `email`, ...); the same value of two kinds
            gets two indexes.
        value: The normalised value (what `tsunagu.identifiers` returns).

    Returns:
        Hex digest (64 characters).
    """
    message = f"{kind}\x1f{value}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
