"""Errors shared by the timeline's recording path."""

from __future__ import annotations


class PermanentError(ValueError):
    """The event can never be recorded as it is (it goes to the dead-letter stream)."""


class ConcurrentUpdateError(RuntimeError):
    """A document changed between read and write too many times in a row."""


class ResolutionConflictError(ConcurrentUpdateError):
    """Concurrent writers kept claiming the same identifiers; the event is retried later."""
