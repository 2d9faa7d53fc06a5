"""Errors the ingestion pipeline raises for input it refuses."""

from __future__ import annotations

from tsunagu.contracts import ContractViolation, Reason


class InvalidInteraction(ContractViolation):
    """What a channel's own rules refuse; `field` names the offending field path.

    The channel-independent rules raise their `ContractViolation` directly: callers catch that.
    """

    def __init__(
        self, field: str, reason: str, *, code: Reason = Reason.CHANNEL_DATA_INVALID
    ) -> None:
        super().__init__(field, reason, code=code)
