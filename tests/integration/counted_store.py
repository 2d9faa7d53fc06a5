"""A recorder over a store whose commands are counted (the `counted` fixture), the counts, and
the `find`s (or every command) a client sends as the store receives them."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pymongo import monitoring

from services.timeline.bootstrap import build_core
from services.timeline.identity.policy import IdentityPolicy
from services.timeline.recorder import TimelineRecorder
from services.timeline.store.command_counts import CommandCounts
from services.timeline.store.documents import Document
from services.timeline.stores import TimelineStore


def recorder_over(store: TimelineStore) -> TimelineRecorder:
    """The timeline's recorder over `store`, for Japanese phone numbers."""
    return build_core(store, identity_for=lambda _tenant: IdentityPolicy("JP")).recorder


def commands_sent(counts: CommandCounts) -> Counter[str]:
    """Commands sent so far, by `command:collection`."""
    return Counter({key: tally["count"] for key, tally in counts.snapshot()["commands"].items()})


class SentFinds(monitoring.CommandListener):
    """The `find` commands a client sends, as the store receives them (a command listener)."""

    def __init__(self) -> None:
        self.sent: list[Document] = []

    def filters(self, collection: str) -> list[dict[str, Any]]:
        """The filters of the finds sent to `collection`, in order."""
        return [dict(c.get("filter", {})) for c in self.sent if c["find"] == collection]

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.sent.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


class SentCommands(monitoring.CommandListener):
    """Every command a client sends, in the order sent (a command listener)."""

    def __init__(self) -> None:
        self.sent: list[Document] = []

    def of(self, name: str, collection: str) -> list[Document]:
        """The commands `name` (e.g. "update") sent to `collection`, in order."""
        return [c for c in self.sent if c.get(name) == collection]

    def keys(self) -> list[str]:
        """Each command sent as `command:collection`, in order."""
        return [f"{name}:{c[name]}" for c in self.sent for name in [next(iter(c))]]

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
