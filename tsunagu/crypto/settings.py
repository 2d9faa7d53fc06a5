"""The key-provider setting every process that seals or opens personal data includes."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field

from tsunagu.crypto.bus_seal import BusSealer
from tsunagu.crypto.keys import LocalKeyFile


class KeyProviderSettings(BaseModel):
    """Where the tenants' key-encryption keys come from.

    ``TSUNAGU_KEY_FILE`` (one variable for every process: ingestion seals what the
    timeline opens, so both must hold the same keys) names a local key file
    (`tsunagu.crypto.keys.LocalKeyFile`, created on first use). Unset: nothing is sealed,
    which only the encryption benchmark's baseline and tests of plaintext paths want.
    """

    key_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("key_file", "TSUNAGU_KEY_FILE")
    )

    def key_provider(self) -> LocalKeyFile | None:
        """The key provider, or None when encryption is off."""
        return None if self.key_file is None else LocalKeyFile(self.key_file)

    def bus_sealer(self) -> BusSealer | None:
        """The sealer for interaction payloads on the bus, or None when encryption is off."""
        provider = self.key_provider()
        return None if provider is None else BusSealer(provider)
