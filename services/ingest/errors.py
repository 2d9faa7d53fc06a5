"""Errors the ingestion pipeline raises for input it refuses."""

from __future__ import annotations


class InvalidInteraction(ValueError):
    """An interaction that cannot be accepted; `field` names the offending field path."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
