"""Errors shared by the timeline's recording path."""

from __future__ import annotations


class PermanentError(ValueError):
    """The event can never be recorded as it is (it goes to the dead-letter stream)."""
