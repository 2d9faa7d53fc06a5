"""Erasure as GraphQL sees it: `eraseCustomer` for privacy officers, and the erasure status."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.context import Info
from gateway.errors import ErrorCode, GatewayError, bad_user_input
from gateway.scalars import check_id, instant
from tsunagu.v1 import erasure_pb2

MAX_REASON_CHARS = 1000


@strawberry.type(description="How many of something survived an erasure, by name.")
class NamedCount:
    name: str
    count: int


@strawberry.type(description="What survives an erasure for statistics: no identifier, no word.")
class AnonymousCounts:
    contacts: int
    contacts_by_channel: list[NamedCount]
    csat_scores: list[int]
    cancellation_reasons: list[NamedCount] = strawberry.field(
        description="By reason (`CANCELLATION_REASON_HEALTH`, ...)."
    )


@strawberry.type(description="The record an erasure leaves in the erasure ledger.")
class ErasureCertificate:
    id: strawberry.ID
    customer_ids: list[strawberry.ID] = strawberry.field(
        description="The person erased: the customer named and every customer merged into it."
    )
    erased_at: datetime | None
    by_subject: str = strawberry.field(description="The privacy officer who erased.")
    by_name: str
    reason: str
    key_ids: list[str] = strawberry.field(description="The data keys destroyed (ids only).")
    suppressed_identifiers: int
    counts: AnonymousCounts


@strawberry.type(description="Whether a customer was erased, or met an erased person's identifier.")
class ErasureStatus:
    certificates: list[ErasureCertificate]
    previously_erased: bool = strawberry.field(
        description="The customer presented an identifier of an erased person: a new customer, "
        "deliberately not joined to the erased history."
    )


def _named(counts: dict[str, int]) -> list[NamedCount]:
    return [NamedCount(name=name, count=count) for name, count in sorted(counts.items())]


def certificate(found: erasure_pb2.ErasureCertificate) -> ErasureCertificate:
    """A certificate from the timeline's answer."""
    counts = found.counts
    return ErasureCertificate(
        id=strawberry.ID(found.id),
        customer_ids=[strawberry.ID(i) for i in found.customer_ids],
        erased_at=instant(found, "erased_at"),
        by_subject=found.by.subject,
        by_name=found.by.display_name,
        reason=found.reason,
        key_ids=list(found.key_ids),
        suppressed_identifiers=found.suppressed_identifiers,
        counts=AnonymousCounts(
            contacts=counts.contacts,
            contacts_by_channel=_named(dict(counts.contacts_by_channel)),
            csat_scores=list(counts.csat_scores),
            cancellation_reasons=_named(dict(counts.cancellation_reasons)),
        ),
    )


async def erase_customer(info: Info, customer_id: strawberry.ID, reason: str) -> ErasureCertificate:
    """Crypto-shred one person (APPI art. 35 / GDPR art. 17); irreversible."""
    checked = check_id("customerId", customer_id)
    reason = reason.strip()
    if not reason:
        raise bad_user_input("`reason` must not be empty.")
    if len(reason) > MAX_REASON_CHARS:
        raise bad_user_input(f"`reason` is longer than {MAX_REASON_CHARS} characters.")
    principal = info.context.principal
    found = await info.context.timeline.erase_customer(
        erasure_pb2.EraseCustomerRequest(
            tenant=principal.tenant,
            customer_id=checked,
            reason=reason,
            actor=erasure_pb2.ErasureActor(
                subject=principal.subject, display_name=principal.display_name
            ),
        )
    )
    if found is None:
        raise GatewayError(ErrorCode.NOT_FOUND, "No such customer, or erased already.")
    return certificate(found)


async def resolve_erasure_status(info: Info, customer_id: strawberry.ID) -> ErasureStatus | None:
    checked = check_id("customerId", customer_id)
    found = await info.context.timeline.erasure_status(info.context.principal.tenant, checked)
    if found is None:
        return None
    return ErasureStatus(
        certificates=[certificate(c) for c in found.certificates],
        previously_erased=found.previously_erased,
    )
