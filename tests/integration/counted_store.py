"""A recorder over a store whose commands are counted (the `counted` fixture), and the counts."""

from __future__ import annotations

from collections import Counter

from services.timeline.bootstrap import build_core
from services.timeline.identity.policy import IdentityPolicy
from services.timeline.recorder import TimelineRecorder
from services.timeline.store.command_counts import CommandCounts
from services.timeline.stores import TimelineStore


def recorder_over(store: TimelineStore) -> TimelineRecorder:
    """The timeline's recorder over `store`, for Japanese phone numbers."""
    return build_core(store, identity_for=lambda _tenant: IdentityPolicy("JP")).recorder


def commands_sent(counts: CommandCounts) -> Counter[str]:
    """Commands sent so far, by `command:collection`."""
    return Counter({key: tally["count"] for key, tally in counts.snapshot()["commands"].items()})
