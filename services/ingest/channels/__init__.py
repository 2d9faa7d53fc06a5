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

__all__ = ["NORMALIZERS", "Normalizer"]
