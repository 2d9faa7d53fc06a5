"""Per-channel normalisers, one module per channel, and the registry that picks them."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from services.ingest.channels import chat, email, sms, social, voice, web
from tsunagu.v1 import interaction_pb2


class Normalizer(Protocol):
    """A channel normaliser: mutates the pipeline's copy of an interaction in place."""

    def __call__(self, interaction: interaction_pb2.Interaction, *, region: str) -> None:
        """Normalise `interaction` (already structurally valid) for its channel."""


NORMALIZERS: Mapping[int, Normalizer] = MappingProxyType(
    {
        interaction_pb2.CHANNEL_CHAT: chat.normalize,
        interaction_pb2.CHANNEL_VOICE: voice.normalize,
        interaction_pb2.CHANNEL_EMAIL: email.normalize,
        interaction_pb2.CHANNEL_SMS: sms.normalize,
        interaction_pb2.CHANNEL_SOCIAL: social.normalize,
        interaction_pb2.CHANNEL_WEB: web.normalize,
    }
)

# Identifier kinds a channel can vouch for; a producer's `verified` on any other kind is
# dropped (docs/architecture.md, "Verified identifiers", gives the reason for each).
VERIFIABLE: Mapping[int, frozenset[int]] = MappingProxyType(
    {
        # A signed-in widget session: the login, the session's visitor id and the account's
        # contact details, as the shop's backend vouches for them.
        interaction_pb2.CHANNEL_CHAT: frozenset(
            {
                interaction_pb2.IDENTIFIER_KIND_CHAT_LOGIN,
                interaction_pb2.IDENTIFIER_KIND_CHAT_VISITOR,
                interaction_pb2.IDENTIFIER_KIND_EMAIL,
                interaction_pb2.IDENTIFIER_KIND_PHONE,
            }
        ),
        # The caller id the telephony network delivered; the sender the carrier delivered.
        interaction_pb2.CHANNEL_VOICE: frozenset({interaction_pb2.IDENTIFIER_KIND_PHONE}),
        interaction_pb2.CHANNEL_SMS: frozenset({interaction_pb2.IDENTIFIER_KIND_PHONE}),
        # The sender of a reply in a thread our mail started (or a DKIM-checked sender).
        interaction_pb2.CHANNEL_EMAIL: frozenset({interaction_pb2.IDENTIFIER_KIND_EMAIL}),
        # The account the network authenticated as the sender.
        interaction_pb2.CHANNEL_SOCIAL: frozenset({interaction_pb2.IDENTIFIER_KIND_SOCIAL_HANDLE}),
        # Anyone can type anything into a public form.
        interaction_pb2.CHANNEL_WEB: frozenset(),
    }
)

__all__ = ["NORMALIZERS", "VERIFIABLE", "Normalizer"]
