"""Privacy fields: the read audit for privacy officers, and revealing a masked value."""

from __future__ import annotations

import enum
import unicodedata
from datetime import UTC, datetime

import strawberry

from gateway.audit import AccessKey, AccessKind, recorder
from gateway.context import Info
from gateway.errors import ErrorCode, GatewayError, bad_user_input
from gateway.paging import Connection, Edge, PageInfo, check_first
from gateway.scalars import check_id
from tsunagu.v1 import interaction_pb2, privacy_pb2

MAX_AUDIT_PAGE = 200
MAX_REASON_LENGTH = 500
_MIN_REASON_LENGTH = 3
# Cursors are sequence numbers the timeline handed out: digits, at most int64's 19.
_MAX_CURSOR_LENGTH = 19


@strawberry.enum(description="A value masked for some roles that a reveal shows in full.")
class RevealableField(enum.Enum):
    PHONE_NUMBERS = "PHONE_NUMBERS"
    EMAIL_ADDRESSES = "EMAIL_ADDRESSES"


_KINDS = {
    RevealableField.PHONE_NUMBERS: interaction_pb2.IDENTIFIER_KIND_PHONE,
    RevealableField.EMAIL_ADDRESSES: interaction_pb2.IDENTIFIER_KIND_EMAIL,
}


@strawberry.type(description="Values shown in full by a reveal; the reveal is in the audit.")
class Revealed:
    customer_id: strawberry.ID
    field: RevealableField
    values: list[str]


@strawberry.type(description="One access to personal data on the tenant's audit chain.")
class AuditRecord:
    sequence: int = strawberry.field(description="1, 2, 3, ... per tenant, without gaps.")
    at: datetime
    subject: str = strawberry.field(description="Who: the principal's subject.")
    roles: list[str]
    customer_id: strawberry.ID | None
    operation: str = strawberry.field(
        description='"read_profile", "read_timeline", "reveal", "export", "read_audit".'
    )
    fields: list[str]
    client_address: str
    reason: str | None
    hash: str = strawberry.field(description="SHA-256 over this record and `previousHash`.")
    previous_hash: str

    @classmethod
    def from_proto(cls, record: privacy_pb2.AuditRecord) -> AuditRecord:
        """Convert one stored record."""
        access = record.access
        return cls(
            sequence=record.sequence,
            at=record.at.ToDatetime(tzinfo=UTC),
            subject=access.subject,
            roles=list(access.roles),
            customer_id=strawberry.ID(access.customer_id) if access.customer_id else None,
            operation=access.operation,
            fields=list(access.fields),
            client_address=access.client_address,
            reason=access.reason or None,
            hash=record.hash,
            previous_hash=record.previous_hash,
        )


@strawberry.type(name="AuditConnection", description="A page of audit records, newest first.")
class AuditConnection(Connection[Edge[AuditRecord]]):
    @classmethod
    def from_response(cls, response: privacy_pb2.ListAuditResponse) -> AuditConnection:
        """Convert one page of ``ListAudit``."""
        edges = [
            Edge(cursor=str(record.sequence), node=AuditRecord.from_proto(record))
            for record in response.records
        ]
        return cls(
            edges=edges,
            page_info=PageInfo.forward(
                has_next_page=response.has_more,
                start=edges[0].cursor if edges else None,
                end=response.next_cursor or (edges[-1].cursor if edges else None),
            ),
        )


@strawberry.type(description="Whether the tenant's audit chain is as it was written.")
class AuditChainVerdict:
    intact: bool
    records_checked: int
    first_broken_sequence: int | None = strawberry.field(
        description="The first record that does not fit the chain; null when intact."
    )
    problem: str | None = strawberry.field(
        description='"hash" (a record was changed), "link" or "gap" (records removed).'
    )


def check_reason(reason: str) -> str:
    """A reason as the audit keeps it: trimmed, 3-500 printable characters.

    Raises:
        GatewayError: ``BAD_USER_INPUT`` otherwise.
    """
    text = reason.strip()
    if not _MIN_REASON_LENGTH <= len(text) <= MAX_REASON_LENGTH:
        raise bad_user_input(
            f"`reason` must have {_MIN_REASON_LENGTH}-{MAX_REASON_LENGTH} characters."
        )
    if any(unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co"} for char in text):
        raise bad_user_input("`reason` must not contain control or format characters.")
    return text


def _cursor(after: str | None) -> str:
    if after is None:
        return ""
    if not after.isascii() or not after.isdigit() or len(after) > _MAX_CURSOR_LENGTH:
        raise bad_user_input("`after` is not a cursor of this list.")
    return after


async def _audit_page(
    info: Info, *, customer_id: str, first: int, after: str | None
) -> AuditConnection:
    check_first(first, MAX_AUDIT_PAGE)
    cursor = _cursor(after)
    context = info.context
    tenant = context.principal.tenant
    # Reading who read a customer is itself an access to that customer's record.
    await recorder(context).record([AccessKey(customer_id, AccessKind.READ_AUDIT)])
    page = await context.timeline.list_audit(
        tenant, customer_id=customer_id, page_size=first, cursor=cursor
    )
    return AuditConnection.from_response(page)


async def resolve_audit_trail(
    info: Info, customer_id: strawberry.ID, first: int = 50, after: str | None = None
) -> AuditConnection:
    """Who accessed one customer's data, newest first."""
    checked = check_id("customerId", customer_id)
    return await _audit_page(info, customer_id=checked, first=first, after=after)


async def resolve_audit_log(
    info: Info, first: int = 50, after: str | None = None
) -> AuditConnection:
    """Every access to the tenant's personal data, newest first."""
    return await _audit_page(info, customer_id="", first=first, after=after)


async def resolve_verify_audit_chain(info: Info) -> AuditChainVerdict:
    """Recompute the tenant's audit chain."""
    context = info.context
    verdict = await context.timeline.verify_audit_chain(context.principal.tenant)
    return AuditChainVerdict(
        intact=verdict.intact,
        records_checked=verdict.records_checked,
        first_broken_sequence=verdict.first_broken_sequence or None,
        problem=verdict.problem or None,
    )


async def resolve_reveal(
    info: Info, customer_id: strawberry.ID, field: RevealableField, reason: str
) -> Revealed:
    """Show a customer's masked values in full, for a stated reason, recorded first."""
    checked = check_id("customerId", customer_id)
    why = check_reason(reason)
    context = info.context
    found = await context.loaders.customers.load(checked)
    if found is None:
        raise GatewayError(ErrorCode.NOT_FOUND, f"Customer {checked} not found.")
    await recorder(context).record(
        [AccessKey(found.id, AccessKind.REVEAL, fields=(field.value,), reason=why)]
    )
    values = [ident.value for ident in found.identifiers if ident.kind == _KINDS[field]]
    return Revealed(customer_id=strawberry.ID(found.id), field=field, values=values)


@strawberry.type
class PrivacyQuery:
    audit_trail: AuditConnection = strawberry.field(
        resolver=resolve_audit_trail,
        description="Who read, revealed or exported one customer's data (first: 1-200).",
    )
    audit_log: AuditConnection = strawberry.field(
        resolver=resolve_audit_log,
        description="Every access to the tenant's personal data, newest first (first: 1-200).",
    )
    verify_audit_chain: AuditChainVerdict = strawberry.field(
        resolver=resolve_verify_audit_chain,
        description="Recompute the tenant's audit chain and say whether it is intact.",
    )


@strawberry.type
class PrivacyMutation:
    reveal: Revealed = strawberry.field(
        resolver=resolve_reveal,
        description=(
            "Show a customer's masked phone numbers or email addresses in full; the reveal, "
            "its reason (3-500 characters) and who asked are recorded in the audit first."
        ),
    )
