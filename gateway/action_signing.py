"""The gateway's agent-action signing key, loaded once at start from its settings."""

from __future__ import annotations

from gateway.settings import GatewaySettings
from tsunagu.bus.actor_signature import ActorSigner
from tsunagu.lifecycle import CannotStart


class ActionSigningNotConfigured(CannotStart):
    """Start-up error: no usable key to sign agent actions with."""


def action_signer(settings: GatewaySettings) -> ActorSigner:
    """The signer for ``settings.action_signing_key_file``.

    Raises:
        ActionSigningNotConfigured: The setting is unset, or the file is unreadable or holds
            no Ed25519 private key. A gateway without it would publish agent actions that
            the timeline dead-letters, so it does not start.
    """
    path = settings.action_signing_key_file
    if path is None:
        raise ActionSigningNotConfigured(
            "TSUNAGU_GATEWAY_ACTION_SIGNING_KEY_FILE is not set: the timeline executes only "
            "agent actions signed with the gateway's key"
        )
    try:
        return ActorSigner.from_file(path)
    except (OSError, ValueError) as error:
        # The class only: a key parser's message is no business of a log.
        raise ActionSigningNotConfigured(
            f"TSUNAGU_GATEWAY_ACTION_SIGNING_KEY_FILE={path}: no Ed25519 private key "
            f"({type(error).__name__})"
        ) from None
