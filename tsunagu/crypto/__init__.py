"""Field encryption for personal data: envelopes, key providers, data keys and blind indexes."""

from __future__ import annotations

from tsunagu.crypto.blind_index import blind_index
from tsunagu.crypto.data_keys import DataKey, new_data_key, rewrap, unwrap_data_key
from tsunagu.crypto.envelope import Binding, DecryptionFailed, open_sealed, seal
from tsunagu.crypto.keys import KeyProvider, LocalKeyFile, UnknownKey

__all__ = [
    "Binding",
    "DataKey",
    "DecryptionFailed",
    "KeyProvider",
    "LocalKeyFile",
    "UnknownKey",
    "blind_index",
    "new_data_key",
    "open_sealed",
    "rewrap",
    "seal",
    "unwrap_data_key",
]
