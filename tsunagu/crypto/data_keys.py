"""Data keys: random AES keys per customer (or per event), stored only wrapped."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from tsunagu.crypto.envelope import Binding
from tsunagu.crypto.keys import KeyProvider

_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class DataKey:
    """One data key: its id (named in every envelope it seals), the key and its wrapped form.

    Attributes:
        key_id: `dek/<owner>/<random>`; unique, so a destroyed key is never confused with
            a later one of the same owner.
        key: The AES-256 key; kept in memory only.
        wrapped: The key wrapped by the tenant's KEK; what is stored.
    """

    key_id: str
    key: bytes
    wrapped: bytes


def _wrap_binding(tenant: str, key_id: str) -> Binding:
    return Binding(tenant=tenant, collection="keys", field="data_key", owner=key_id)


def new_data_key(provider: KeyProvider, *, tenant: str, owner: str) -> DataKey:
    """A fresh data key for `owner` (a customer id, an event id), wrapped for storage."""
    key_id = f"dek/{owner}/{secrets.token_hex(8)}"
    key = os.urandom(_KEY_BYTES)
    return DataKey(key_id, key, provider.wrap(tenant, key, _wrap_binding(tenant, key_id)))


def unwrap_data_key(provider: KeyProvider, *, tenant: str, key_id: str, wrapped: bytes) -> DataKey:
    """A stored data key, unwrapped.

    Raises:
        UnknownKey: Its KEK is not held.
        DecryptionFailed: Tampered, or stored under another id or tenant.
    """
    key = provider.unwrap(tenant, wrapped, _wrap_binding(tenant, key_id))
    return DataKey(key_id, key, wrapped)


def rewrap(provider: KeyProvider, *, tenant: str, key_id: str, wrapped: bytes) -> bytes:
    """The data key wrapped again with the tenant's current KEK (after a KEK rotation).

    The data key itself is unchanged, so nothing it sealed needs re-encrypting.
    """
    binding = _wrap_binding(tenant, key_id)
    return provider.wrap(tenant, provider.unwrap(tenant, wrapped, binding), binding)
