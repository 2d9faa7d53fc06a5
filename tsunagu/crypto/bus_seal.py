"""Events sealed for the bus: a data key per event, wrapped by the tenant's KEK, in a header."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from tsunagu.bus.headers import SEALED_KEY
from tsunagu.crypto.data_keys import new_data_key, unwrap_data_key
from tsunagu.crypto.envelope import Binding, DecryptionFailed, key_id_of, open_sealed, seal
from tsunagu.crypto.keys import KeyProvider


def _binding(tenant: str) -> Binding:
    # Bound to the tenant of the subject: a body moved to another tenant's subject does not
    # open. Not to the message id, which a dead-letter replay renews; the body and its key
    # header are tied together by the key id (authenticated on both sides).
    return Binding(tenant=tenant, collection="bus", field="interaction")


@dataclass(frozen=True, slots=True)
class BusSealer:
    """Seals and opens interaction payloads with per-event data keys.

    Ingestion cannot know the customer an event belongs to, so each event gets its own
    data key; the timeline, which holds the same key provider, opens it when consuming.
    """

    provider: KeyProvider

    def seal(self, *, tenant: str, event_id: str, data: bytes) -> tuple[bytes, dict[str, str]]:
        """The sealed body and the header that carries its wrapped key."""
        key = new_data_key(self.provider, tenant=tenant, owner=f"bus/{event_id}")
        body = seal(key.key, key.key_id, data, _binding(tenant))
        return body, {SEALED_KEY: base64.b64encode(key.wrapped).decode()}

    def open(self, *, tenant: str, data: bytes, headers: Mapping[str, str]) -> bytes:
        """The payload of a sealed message (or `data` itself when it was not sealed).

        Raises:
            DecryptionFailed: The key or body was tampered with, moved, or is unknown.
        """
        wrapped_text = headers.get(SEALED_KEY)
        if wrapped_text is None:
            return data
        try:
            wrapped = base64.b64decode(wrapped_text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptionFailed("sealed key header is not base64") from exc
        key = unwrap_data_key(self.provider, tenant=tenant, key_id=key_id_of(data), wrapped=wrapped)
        return open_sealed(key.key, data, _binding(tenant))
