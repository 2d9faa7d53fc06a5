"""The error identifier normalisers raise for values that must be rejected at ingest."""

from __future__ import annotations


class IdentifierFormatError(ValueError):
    """An identifier value that is hopeless: it cannot be normalised and must be rejected.

    Attributes:
        part: Which part of the `Identifier` message is at fault (`"value"`, `"network"` or
            `"kind"`), so that callers can point at the offending proto field.
    """

    def __init__(self, message: str, *, part: str = "value") -> None:
        super().__init__(message)
        self.part = part
