"""An audit record as stored, and the hash that chains it to the one before."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TypedDict

GENESIS_HASH = "0" * 64
"""The ``previous_hash`` of a tenant's first record."""


class Access(TypedDict):
    """One access to personal data (what the gateway asks to record)."""

    subject: str
    customer_id: str
    operation: str
    fields: list[str]
    client_address: str
    reason: str
    roles: list[str]


class AuditDoc(Access):
    """One record of a tenant's chain, as stored in ``audit_log``."""

    tenant: str
    sequence: int
    # Millisecond precision: what every store keeps, so the hash can be recomputed.
    at: datetime
    previous_hash: str
    hash: str


def chained(
    tenant: str, sequence: int, access: Access, *, at: datetime, previous_hash: str
) -> AuditDoc:
    """The record ``sequence`` of ``tenant``, its hash computed over it and ``previous_hash``."""
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    doc = AuditDoc(
        subject=access["subject"],
        customer_id=access["customer_id"],
        operation=access["operation"],
        fields=list(access["fields"]),
        client_address=access["client_address"],
        reason=access["reason"],
        roles=sorted(access["roles"]),
        tenant=tenant,
        sequence=sequence,
        at=at,
        previous_hash=previous_hash,
        hash="",
    )
    doc["hash"] = record_hash(doc)
    return doc


def record_hash(doc: AuditDoc) -> str:
    """SHA-256 (hex) over every field of the record but its own hash, in a canonical form."""
    content = {
        "tenant": doc["tenant"],
        "sequence": doc["sequence"],
        "at": doc["at"].isoformat(timespec="milliseconds"),
        "subject": doc["subject"],
        "customer_id": doc["customer_id"],
        "operation": doc["operation"],
        "fields": list(doc["fields"]),
        "client_address": doc["client_address"],
        "reason": doc["reason"],
        "roles": list(doc["roles"]),
        "previous_hash": doc["previous_hash"],
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
