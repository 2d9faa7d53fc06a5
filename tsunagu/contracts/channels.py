"""What each channel's interactions look like: their detail message, kinds and required fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tsunagu.bus.subjects import CHANNEL_TOKENS
from tsunagu.v1 import interaction_pb2 as pb


@dataclass(frozen=True, slots=True)
class ChannelRules:
    """The envelope rules of one channel.

    Attributes:
        detail: Member of the `detail` oneof its interactions carry.
        kinds: Kinds accepted on the channel.
        required: Fields of the detail message that must not be blank.
    """

    detail: str
    kinds: frozenset[int]
    required: tuple[str, ...] = ()


_CALL_KINDS = frozenset({pb.KIND_CALL_STARTED, pb.KIND_CALL_TRANSFERRED, pb.KIND_CALL_ENDED})
# Everything an agent (or the system for one) does on the desk: notes to consent changes.
_AGENT_DESK_KINDS = frozenset(range(pb.KIND_NOTE, pb.KIND_OUTREACH + 1))
# A customer may give or withdraw consent on the channels they write on (reply STOP, a form).
_CONSENT = frozenset({pb.KIND_CONSENT_CHANGE})

CHANNEL_RULES: Mapping[int, ChannelRules] = MappingProxyType(
    {
        pb.CHANNEL_CHAT: ChannelRules("chat", frozenset({pb.KIND_MESSAGE}) | _CONSENT),
        pb.CHANNEL_VOICE: ChannelRules("call", _CALL_KINDS, ("call_id",)),
        pb.CHANNEL_EMAIL: ChannelRules(
            "email", frozenset({pb.KIND_EMAIL}) | _CONSENT, ("message_id", "from_address")
        ),
        pb.CHANNEL_SMS: ChannelRules(
            "sms", frozenset({pb.KIND_MESSAGE}) | _CONSENT, ("from_number",)
        ),
        pb.CHANNEL_SOCIAL: ChannelRules(
            "social", frozenset({pb.KIND_MESSAGE}), ("network", "handle")
        ),
        pb.CHANNEL_WEB: ChannelRules(
            "web_form", frozenset({pb.KIND_FORM_SUBMISSION}) | _CONSENT, ("form_id",)
        ),
        pb.CHANNEL_AGENT_DESK: ChannelRules("agent_action", _AGENT_DESK_KINDS),
    }
)


def channel_label(channel: int) -> str:
    """How every message names a channel: its subject token (`sms`, `agent_desk`).

    Numbers outside the enum are `unknown channel 99`, and 0 is `unspecified channel`.
    """
    if channel in CHANNEL_TOKENS:
        return CHANNEL_TOKENS[channel]
    if channel == pb.CHANNEL_UNSPECIFIED:
        return "unspecified channel"
    return f"unknown channel {channel}"
