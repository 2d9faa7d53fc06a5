"""AES-GCM envelopes whose associated data binds tenant, collection, field and owner."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import aead

# Version byte first so a later format (another cipher, a longer nonce) can be told apart.
_VERSION = b"\x01"
_NONCE_BYTES = 12
_MAX_KEY_ID_BYTES = 255


class DecryptionFailed(Exception):
    """An envelope did not open: tampered, bound to other data, or under another key.

    Callers fail closed on it: nothing of the plaintext is ever returned.
    """


@dataclass(frozen=True, slots=True)
class Binding:
    """What a ciphertext belongs to; authenticated, never encrypted.

    Moving a ciphertext to another tenant, collection, field or owner makes it fail to
    open, so a copied value cannot be read in a place its key was not meant for.

    Attributes:
        tenant: Tenant id.
        collection: Where it is stored (`interactions`, `identities`, `bus`, ...).
        field: The field within the record (`raw`, `value`, ...).
        owner: The record it belongs to (an event id, a customer id), or "".
    """

    tenant: str
    collection: str
    field: str
    owner: str = ""

    def associated_data(self) -> bytes:
        # Unit separators: none of the parts may contain one (ids and tenants are
        # subject tokens), so two bindings never serialise to the same bytes.
        parts = (self.tenant, self.collection, self.field, self.owner)
        if any("\x1f" in part for part in parts):
            raise ValueError("a binding part contains a unit separator")
        return "\x1f".join(parts).encode()


def seal(key: bytes, key_id: str, plaintext: bytes, binding: Binding) -> bytes:
    """Encrypt `plaintext` under `key`; the envelope names `key_id` for decryption.

    Layout: version (1) | key id length (1) | key id | nonce (12) | ciphertext and tag.

    Args:
        key: A 256-bit AES key.
        key_id: Which key, so a reader (or a rotation) finds it; at most 255 bytes.
        plaintext: What to protect.
        binding: What the ciphertext belongs to (authenticated).

    Returns:
        The envelope.
    """
    kid = key_id.encode()
    if not 0 < len(kid) <= _MAX_KEY_ID_BYTES:
        raise ValueError("key id must be 1..255 bytes")
    nonce = os.urandom(_NONCE_BYTES)
    header = _VERSION + bytes([len(kid)]) + kid
    # The header is authenticated too: a key id swapped in transit fails like a bad tag.
    body = aead.AESGCM(key).encrypt(nonce, plaintext, header + binding.associated_data())
    return header + nonce + body


def key_id_of(envelope: bytes) -> str:
    """The key id an envelope was sealed under.

    Raises:
        DecryptionFailed: Not an envelope of this format.
    """
    return _split(envelope)[0]


def open_sealed(key: bytes, envelope: bytes, binding: Binding) -> bytes:
    """Decrypt an envelope made by `seal` with the same key and binding.

    Raises:
        DecryptionFailed: Malformed, tampered, another binding or another key.
    """
    key_id, nonce, body = _split(envelope)
    header = envelope[: 2 + len(key_id.encode())]
    try:
        return aead.AESGCM(key).decrypt(nonce, body, header + binding.associated_data())
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed("envelope does not open with this key and binding") from exc


def _split(envelope: bytes) -> tuple[str, bytes, bytes]:
    if len(envelope) < 2 or envelope[:1] != _VERSION:
        raise DecryptionFailed("not a sealed envelope")
    size = envelope[1]
    start = 2 + size
    if size == 0 or len(envelope) < start + _NONCE_BYTES + 16:
        raise DecryptionFailed("truncated envelope")
    try:
        key_id = envelope[2:start].decode()
    except UnicodeDecodeError as exc:
        raise DecryptionFailed("malformed key id") from exc
    return key_id, envelope[start : start + _NONCE_BYTES], envelope[start + _NONCE_BYTES :]
