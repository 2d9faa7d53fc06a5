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


def message_id(tenant: str, event_id: str) -> str:
    """`Nats-Msg-Id` of an interaction: `<tenant>/<event_id>`.

    Event ids are chosen by adapters, so only the pair is unique: with the bare event id, one
    tenant reusing another's would be silently dropped as a duplicate (and the ack would reveal
    that the id exists).
    """
    return f"{tenant}/{event_id}"


# The gateway's signature over an agent action (`tsunagu.bus.actor_signature`): a JWS that the
# timeline verifies before executing the action. A header, not a proto field, because it
# authenticates the message as published (its exact bytes) rather than being part of the event
# that is stored and served.
SIGNED_ACTOR = "Tsunagu-Signed-Actor"

# Ingestion's per-event data key, wrapped by the tenant's key-encryption key (base64,
# `tsunagu.crypto.bus_seal`). Its presence says the body is a sealed envelope, not a bare
# `tsunagu.v1.Interaction`; it travels with the body into the dead-letter stream and back.
SEALED_KEY = "Tsunagu-Sealed-Key"
