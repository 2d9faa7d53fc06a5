"""Canonical event ids and tenant names."""

from __future__ import annotations

import re

from ulid import ULID

from tsunagu.contracts.errors import ContractViolation, Reason

# A tenant is a NATS subject token and a key prefix: no dots, wildcards, spaces or case.
TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
TENANT_RULE = "must be 1..63 characters of a-z, 0-9, '_' or '-', starting alphanumeric"

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NIL_UUID = "00000000-0000-0000-0000-000000000000"
_NIL_ULID = "0" * 26
_ULID_LENGTH = 26
EVENT_ID_RULE = "must be a UUID (hyphenated) or a ULID"


def is_tenant_name(tenant: str) -> bool:
    """Whether `tenant` is a valid tenant name."""
    return TENANT_PATTERN.fullmatch(tenant) is not None


def check_tenant(tenant: str) -> str:
    """Return `tenant` when it is a valid tenant name.

    Raises:
        ContractViolation: `tenant_invalid`.
    """
    if not tenant:
        raise ContractViolation("tenant", "required", code=Reason.TENANT_INVALID)
    if not is_tenant_name(tenant):
        raise ContractViolation("tenant", TENANT_RULE, code=Reason.TENANT_INVALID)
    return tenant


def canonical_event_id(event_id: str) -> str:
    """The canonical form of an event id: a lower-case UUID or an upper-case ULID.

    Every producer canonicalises the same way, so one event retried through any path keeps
    one idempotency key. Surrounding whitespace is not trimmed: it is refused.

    Args:
        event_id: A hyphenated UUID (any case, any version) or a ULID (any case).

    Returns:
        The canonical id.

    Raises:
        ContractViolation: `event_id_invalid`, for anything else or a nil id.
    """
    if not event_id:
        raise ContractViolation("event_id", "required", code=Reason.EVENT_ID_INVALID)
    lowered = event_id.lower()
    if _UUID.fullmatch(lowered):
        # The nil UUID is what an adapter sends when it forgot to set the id; accepting it
        # would de-duplicate every later event of that adapter away.
        if lowered == _NIL_UUID:
            raise ContractViolation(
                "event_id", "the nil UUID is not a unique id", code=Reason.EVENT_ID_INVALID
            )
        return lowered
    if len(event_id) == _ULID_LENGTH:
        try:
            canonical = str(ULID.from_str(event_id))
        except ValueError as exc:
            raise ContractViolation(
                "event_id", f"{EVENT_ID_RULE} ({exc})", code=Reason.EVENT_ID_INVALID
            ) from exc
        if canonical == _NIL_ULID:
            raise ContractViolation(
                "event_id", "the nil ULID is not a unique id", code=Reason.EVENT_ID_INVALID
            )
        return canonical
    raise ContractViolation("event_id", EVENT_ID_RULE, code=Reason.EVENT_ID_INVALID)
