"""The gateway's agent-action key pair for the local run, generated once under the data folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tsunagu.bus.actor_signature import write_key_pair

SIGNING_KEY_FILE = "action-signing-key.pem"
VERIFY_KEY_FILE = "action-verify-key.pem"


@dataclass(frozen=True, slots=True)
class LocalActionKeys:
    """Where the key pair lives: the private key for the gateway, the public for the timeline."""

    signing_key: Path
    verify_key: Path

    @classmethod
    def load_or_create(cls, data_dir: Path) -> LocalActionKeys:
        """The pair under ``data_dir``, generated (private key owner-readable only) if missing.

        Deleting either file rotates the pair on the next run.
        """
        keys = cls(data_dir / SIGNING_KEY_FILE, data_dir / VERIFY_KEY_FILE)
        if not (keys.signing_key.is_file() and keys.verify_key.is_file()):
            write_key_pair(keys.signing_key, keys.verify_key)
        return keys

    def gateway_env(self) -> dict[str, str]:
        """The gateway's setting: the private key it signs agent actions with."""
        return {"TSUNAGU_GATEWAY_ACTION_SIGNING_KEY_FILE": str(self.signing_key)}

    def timeline_env(self) -> dict[str, str]:
        """The timeline's setting: the public keys it verifies agent actions with."""
        return {"TSUNAGU_TIMELINE_ACTION_VERIFY_KEY_FILES": json.dumps([str(self.verify_key)])}
