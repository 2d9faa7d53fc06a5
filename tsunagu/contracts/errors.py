"""The one error the contract raises, and the stable reason codes it carries."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why an interaction was refused: stable codes for headers, metrics and alerts.

    The codes are part of the contract (dead letters carry them in a header): add codes,
    never rename one.
    """

    MALFORMED = "malformed"
    SUBJECT_MISMATCH = "subject_mismatch"
    NOT_RECORDED = "not_recorded"
    EVENT_ID_INVALID = "event_id_invalid"
    TENANT_INVALID = "tenant_invalid"
    CHANNEL_INVALID = "channel_invalid"
    KIND_INVALID = "kind_invalid"
    DIRECTION_INVALID = "direction_invalid"
    ACTOR_INVALID = "actor_invalid"
    OCCURRED_AT_INVALID = "occurred_at_invalid"
    DETAIL_INVALID = "detail_invalid"
    CONTROL_CHARACTERS = "control_characters"
    TEXT_TOO_LARGE = "text_too_large"
    FIELD_TOO_LONG = "field_too_long"
    EVENT_TOO_LARGE = "event_too_large"
    TOO_MANY_IDENTIFIERS = "too_many_identifiers"
    IDENTIFIER_INVALID = "identifier_invalid"
    IDENTIFIERS_MISSING = "identifiers_missing"
    CHANNEL_DATA_INVALID = "channel_data_invalid"
    # Valid on the wire, refused by the timeline's rules (an agent action for an unknown
    # customer, a case of another customer): fixing the data and replaying can succeed.
    REFUSED = "refused"
    # An agent action without the gateway's signature over its actor (docs/security.md).
    UNSIGNED_ACTOR = "unsigned_actor"
    # An agent action whose signature does not verify, or verifies over other content (another
    # tenant, event, actor, roles or payload): forged or altered after the gateway signed it.
    FORGED_ACTOR = "forged_actor"
    # Signed with a key the timeline is not configured with: a forgery, or a key rotation
    # whose new public key has not reached the timeline yet (replay once it has).
    ACTOR_KEY_UNKNOWN = "actor_key_unknown"
    # Failed on every delivery (the store kept failing): replay once the cause is fixed.
    DELIVERIES_EXHAUSTED = "deliveries_exhausted"
    # The store refused the document itself (too large, invalid for it): never retried.
    STORE_REJECTED = "store_rejected"
    # An outreach the customer had not consented to when it was recorded: never stored as sent.
    CONSENT_REQUIRED = "consent_required"


class ContractViolation(ValueError):
    """An interaction that breaks the contract.

    Attributes:
        field: Proto field path of the offending value (`identifiers[2].value`, `tenant`).
        reason: Human-readable explanation, without the field.
        code: Stable reason code.
    """

    def __init__(self, field: str, reason: str, *, code: Reason) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.code = code
