"""The test session's stand-in for the gateway's agent-action key, and signing with it."""

from __future__ import annotations

import atexit
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from tsunagu.bus.actor_signature import ActorSigner, write_key_pair
from tsunagu.local.action_keys import LocalActionKeys
from tsunagu.v1 import interaction_pb2 as pb


@dataclass(frozen=True)
class ActionKeys:
    """An Ed25519 key pair in PEM files, as `make run` generates for the gateway."""

    private: Path
    public: Path
    signer: ActorSigner = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signer", ActorSigner.from_file(self.private))

    @classmethod
    def create(cls, folder: Path, name: str = "action") -> ActionKeys:
        """Generate a fresh key pair under ``folder``."""
        private, public = folder / f"{name}-signing-key.pem", folder / f"{name}-verify-key.pem"
        write_key_pair(private, public)
        return cls(private, public)

    def timeline_env(self) -> dict[str, str]:
        """A timeline process's setting to trust this pair, as `make run` passes it."""
        return LocalActionKeys(self.private, self.public).timeline_env()

    def gateway_env(self) -> dict[str, str]:
        """A gateway process's setting to sign with this pair, as `make run` passes it."""
        return LocalActionKeys(self.private, self.public).gateway_env()

    def headers(
        self, interaction: pb.Interaction, *, roles: Sequence[str] = ("agent",)
    ) -> dict[str, str]:
        """The signed-actor header for ``interaction`` published as ``SerializeToString()``."""
        return self.signer.sign(
            interaction, interaction.SerializeToString(), roles=roles, issued_at=datetime.now(UTC)
        )


@cache
def session_action_keys(name: str = "action") -> ActionKeys:
    """A key pair of this test run; the default one is what test gateways sign with and test
    timelines trust, any other ``name`` one that nothing trusts (an attacker's own).

    A plain function (not only a fixture) because gateway settings are built by helpers that
    run outside fixtures; the folder is removed when the run ends.
    """
    folder = tempfile.TemporaryDirectory(prefix=f"tsunagu-{name}-keys-")
    atexit.register(folder.cleanup)
    return ActionKeys.create(Path(folder.name), name)
