"""Header names carried on bus messages."""

from __future__ import annotations

MSG_ID = "Nats-Msg-Id"
SCHEMA = "Tsunagu-Schema"
INTERACTION_SCHEMA = "tsunagu.v1.Interaction"
IDENTITY_CHANGE_SCHEMA = "tsunagu.v1.IdentityChange"
DEAD_LETTER_ERROR = "Tsunagu-Error"
# A stable code (`tsunagu.contracts.Reason`) beside the error text, for filters and alerts.
DEAD_LETTER_REASON = "Tsunagu-Dead-Letter-Reason"
DEAD_LETTER_DELIVERIES = "Tsunagu-Deliveries"
DEAD_LETTER_ORIGINAL_SEQUENCE = "Tsunagu-Original-Sequence"
