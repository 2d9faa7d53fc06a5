"""The gateway-signed actor of an agent action: a compact JWS (EdDSA) in a message header.

The gateway signs every agent action it publishes with a private key only it holds; the
timeline executes an agent action only when the signature verifies with one of the gateway's
public keys (``services.timeline.signed_actors``). The claims name the tenant, event id,
actor (subject, display name, roles), kind and the SHA-256 of the message's exact bytes, so a
signature lifted onto other content (another tenant, customer, actor, action) does not verify.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tsunagu.bus import headers
from tsunagu.v1 import interaction_pb2 as pb

ALGORITHM = "EdDSA"
# Names what the signature is for, so a token the key might sign for anything else never
# passes as an agent action's actor.
AUDIENCE = "tsunagu:agent-action"
# The claims bound to the message; the verifier recomputes them from what it received.
BOUND_CLAIMS = ("tenant", "event_id", "sub", "name", "kind", "sha256")


def needs_signed_actor(interaction: pb.Interaction) -> bool:
    """Whether the interaction is an agent action, which only the gateway may publish."""
    return (
        interaction.channel == pb.CHANNEL_AGENT_DESK
        or interaction.WhichOneof("detail") == "agent_action"
    )


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's RFC 7638 JWK thumbprint: the same key always has the same ``kid``.

    Derived, not configured, so rotating is adding a public key file and nothing else.
    """
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}, separators=(",", ":"), sort_keys=True
    )
    return _b64url(hashlib.sha256(jwk.encode("ascii")).digest())


def bound_claims(interaction: pb.Interaction, data: bytes) -> dict[str, str]:
    """The claims a signature over ``data`` (the serialized ``interaction``) must carry."""
    return {
        "tenant": interaction.tenant,
        "event_id": interaction.event_id,
        "sub": interaction.actor.id,
        "name": interaction.actor.display_name,
        "kind": pb.Kind.Name(interaction.kind)
        if interaction.kind in pb.Kind.values()
        else str(interaction.kind),
        "sha256": _b64url(hashlib.sha256(data).digest()),
    }


class ActorSigner:
    """Signs agent actions with the gateway's private key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.key_id = key_id(private_key.public_key())

    @classmethod
    def from_file(cls, path: Path) -> ActorSigner:
        """Load a PEM (PKCS #8) Ed25519 private key.

        Raises:
            ValueError: The file holds no Ed25519 private key.
        """
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key)

    def sign(
        self,
        interaction: pb.Interaction,
        data: bytes,
        *,
        roles: Sequence[str],
        issued_at: datetime,
    ) -> dict[str, str]:
        """The header that signs ``data``, the bytes published for ``interaction``.

        Args:
            interaction: The agent action.
            data: Its serialization, exactly as published.
            roles: The agent's roles when the action was taken.
            issued_at: When the gateway signed it.

        Returns:
            ``{SIGNED_ACTOR: <compact JWS>}``.
        """
        claims: dict[str, Any] = {
            **bound_claims(interaction, data),
            "aud": AUDIENCE,
            "roles": list(roles),
            "iat": int(issued_at.timestamp()),
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.key_id})
        return {headers.SIGNED_ACTOR: token}


def load_public_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """The gateway's public keys by ``kid``, from PEM files (one key per file).

    Raises:
        ValueError: A file holds no Ed25519 public key.
    """
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path} is not an Ed25519 public key")
        keys[key_id(key)] = key
    return keys


def write_key_pair(private_path: Path, public_path: Path) -> None:
    """Generate an Ed25519 key pair: the private key owner-readable only."""
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.touch(mode=0o600, exist_ok=True)
    private_path.chmod(0o600)
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
