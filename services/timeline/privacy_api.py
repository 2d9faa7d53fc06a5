"""gRPC PrivacyService: a thin translator between requests and the audit chain."""

from __future__ import annotations

import grpc

from services.timeline.audit.chain import AuditChain, AuditUnavailable
from services.timeline.audit.model import Access, AuditDoc
from services.timeline.audit.records import AuditRecords
from services.timeline.store.documents import to_timestamp
from tsunagu.contracts import ContractViolation, check_tenant
from tsunagu.v1 import privacy_pb2, privacy_pb2_grpc

Context = grpc.aio.ServicerContext[object, object]

DEFAULT_PAGE = 50
MAX_PAGE = 200
# One gateway operation reads a few customers; a batch this large is not a gateway's.
MAX_ACCESSES = 1000
MAX_TEXT = 256
MAX_REASON = 1000
MAX_FIELDS = 32
# A sequence number fits in int64: at most 19 digits.
_MAX_CURSOR_DIGITS = 19


class PrivacyApi(privacy_pb2_grpc.PrivacyServiceServicer):
    """The read audit over gRPC: record accesses, list them, verify the chain."""

    def __init__(self, chain: AuditChain, records: AuditRecords) -> None:
        self._chain = chain
        self._records = records

    async def RecordAccess(
        self, request: privacy_pb2.RecordAccessRequest, context: Context
    ) -> privacy_pb2.RecordAccessResponse:
        tenant = await _tenant(request.tenant, context)
        if len(request.accesses) > MAX_ACCESSES:
            await _invalid(context, f"accesses: at most {MAX_ACCESSES} per call")
        accesses = [await _access(access, context) for access in request.accesses]
        try:
            stored = await self._chain.append(tenant, accesses)
        except AuditUnavailable:
            # Nothing recorded: the gateway must not answer the reads (it fails closed).
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the audit could not be recorded")
            raise
        return privacy_pb2.RecordAccessResponse(sequences=[doc["sequence"] for doc in stored])

    async def ListAudit(
        self, request: privacy_pb2.ListAuditRequest, context: Context
    ) -> privacy_pb2.ListAuditResponse:
        tenant = await _tenant(request.tenant, context)
        if not 0 <= request.page_size <= MAX_PAGE:
            await _invalid(context, f"page_size: 1-{MAX_PAGE}")
        if len(request.customer_id) > MAX_TEXT:
            await _invalid(context, "customer_id: too long")
        before = None
        if request.cursor:
            if not request.cursor.isdigit() or len(request.cursor) > _MAX_CURSOR_DIGITS:
                await _invalid(context, "cursor: not one this service handed out")
            before = int(request.cursor)
        size = request.page_size or DEFAULT_PAGE
        docs = await self._records.page(
            tenant, customer_id=request.customer_id, before=before, limit=size + 1
        )
        more = len(docs) > size
        docs = docs[:size]
        return privacy_pb2.ListAuditResponse(
            records=[record_to_proto(doc) for doc in docs],
            next_cursor=str(docs[-1]["sequence"]) if more else "",
            has_more=more,
        )

    async def VerifyAuditChain(
        self, request: privacy_pb2.VerifyAuditChainRequest, context: Context
    ) -> privacy_pb2.VerifyAuditChainResponse:
        tenant = await _tenant(request.tenant, context)
        verdict = await self._chain.verify(tenant)
        return privacy_pb2.VerifyAuditChainResponse(
            intact=verdict.intact,
            records_checked=verdict.checked,
            first_broken_sequence=verdict.first_broken,
            problem=verdict.problem,
        )


def record_to_proto(doc: AuditDoc) -> privacy_pb2.AuditRecord:
    """One stored record as the API shows it."""
    return privacy_pb2.AuditRecord(
        tenant=doc["tenant"],
        sequence=doc["sequence"],
        access=privacy_pb2.Access(
            subject=doc["subject"],
            customer_id=doc["customer_id"],
            operation=doc["operation"],
            fields=doc["fields"],
            client_address=doc["client_address"],
            reason=doc["reason"],
            roles=doc["roles"],
        ),
        at=to_timestamp(doc["at"]),
        previous_hash=doc["previous_hash"],
        hash=doc["hash"],
    )


async def _invalid(context: Context, message: str) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)


async def _tenant(tenant: str, context: Context) -> str:
    try:
        return check_tenant(tenant)
    except ContractViolation as exc:
        await _invalid(context, str(exc))
        raise


async def _access(access: privacy_pb2.Access, context: Context) -> Access:
    short = {
        "subject": access.subject,
        "customer_id": access.customer_id,
        "operation": access.operation,
        "client_address": access.client_address,
    }
    for name, value in short.items():
        if len(value) > MAX_TEXT:
            await _invalid(context, f"accesses.{name}: at most {MAX_TEXT} characters")
    if not access.subject or not access.operation:
        await _invalid(context, "accesses: subject and operation are required")
    if len(access.reason) > MAX_REASON:
        await _invalid(context, f"accesses.reason: at most {MAX_REASON} characters")
    if len(access.fields) > MAX_FIELDS or len(access.roles) > MAX_FIELDS:
        await _invalid(context, f"accesses: at most {MAX_FIELDS} fields and roles")
    if any(len(item) > MAX_TEXT for item in (*access.fields, *access.roles)):
        await _invalid(context, f"accesses: fields and roles at most {MAX_TEXT} characters")
    return Access(
        subject=access.subject,
        customer_id=access.customer_id,
        operation=access.operation,
        fields=list(access.fields),
        client_address=access.client_address,
        reason=access.reason,
        roles=list(access.roles),
    )
