"""Verifies the gateway's signature on an agent action before the timeline executes it.

NATS permissions let only the gateway publish on ``interactions.*.agent_desk``; this is the
second lock: a message there is executed only when its ``Tsunagu-Signed-Actor`` header is a
JWS by one of the gateway's keys over exactly this tenant, event, actor, kind and payload
(``tsunagu.bus.actor_signature``). A stolen NATS credential, a misconfigured permission or a
replay of a signed action onto other content is then refused, never executed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tsunagu.bus import headers
from tsunagu.bus.actor_signature import (
    ALGORITHM,
    AUDIENCE,
    BOUND_CLAIMS,
    bound_claims,
    load_public_keys,
    needs_signed_actor,
)
from tsunagu.contracts import ContractViolation, Reason
from tsunagu.lifecycle import CannotStart
from tsunagu.v1 import interaction_pb2 as pb

log = logging.getLogger(__name__)

# Clock skew tolerated between the gateway and the timeline on the signature's `iat`.
LEEWAY_SECONDS = 60.0


class ActorKeysNotLoaded(CannotStart):
    """Start-up error: a configured public key file is unreadable or holds no Ed25519 key."""


class SignedActors:
    """The gateway's public keys, by key id; old and new are both listed during a rotation."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)
        if not self._keys:
            log.warning(
                "no gateway public key configured (TSUNAGU_TIMELINE_ACTION_VERIFY_KEY_FILES): "
                "every agent action will be dead-lettered"
            )

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> SignedActors:
        """Load PEM public keys, one per file.

        Raises:
            ActorKeysNotLoaded: A file is unreadable or holds no Ed25519 public key.
        """
        try:
            return cls(load_public_keys(paths))
        except (OSError, ValueError) as error:
            raise ActorKeysNotLoaded(f"gateway public keys: {error}") from None

    def check(
        self, interaction: pb.Interaction, data: bytes, message_headers: Mapping[str, str] | None
    ) -> None:
        """Accept a customer-facing event as is; an agent action only with a valid signature.

        Args:
            interaction: The decoded event.
            data: The message's bytes, as received (what the signature's digest covers).
            message_headers: The message's headers.

        Raises:
            ContractViolation: ``UNSIGNED_ACTOR``, ``ACTOR_KEY_UNKNOWN`` or ``FORGED_ACTOR``;
                its text names what failed, never a claim's value.
        """
        if not needs_signed_actor(interaction):
            return
        token = (message_headers or {}).get(headers.SIGNED_ACTOR)
        if not token:
            raise ContractViolation(
                "actor", "agent action without the gateway's signature", code=Reason.UNSIGNED_ACTOR
            )
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as error:
            raise _forged(f"unreadable signature ({type(error).__name__})") from None
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise ContractViolation(
                "actor",
                f"signed with unknown key id {str(kid)[:64]!r}",
                code=Reason.ACTOR_KEY_UNKNOWN,
            )
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iat", "aud", *BOUND_CLAIMS]},
            )
        except jwt.InvalidTokenError as error:
            raise _forged(f"signature does not verify ({type(error).__name__})") from None
        expected = bound_claims(interaction, data)
        if differing := [name for name in BOUND_CLAIMS if claims.get(name) != expected[name]]:
            raise _forged(f"signature covers other content ({', '.join(differing)})")
        if not isinstance(claims.get("roles"), list):
            raise _forged("signature names no roles")


def _forged(reason: str) -> ContractViolation:
    return ContractViolation("actor", reason, code=Reason.FORGED_ACTOR)
