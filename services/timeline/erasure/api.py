"""gRPC ErasureService: decode → `Eraser` → the certificate (a thin translator)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from services.timeline.erasure.eraser import MAX_REASON_CHARS, Eraser, NothingToErase
from services.timeline.store.documents import to_timestamp
from tsunagu.contracts import ContractViolation, check_tenant
from tsunagu.v1 import erasure_pb2, erasure_pb2_grpc

SERVICE_NAME = erasure_pb2.DESCRIPTOR.services_by_name["ErasureService"].full_name
MAX_ID_LENGTH = 256
MAX_ACTOR_CHARS = 256

Context = grpc.aio.ServicerContext[object, object]


def certificate_to_proto(doc: Mapping[str, Any]) -> erasure_pb2.ErasureCertificate:
    counts = doc.get("counts", {})
    by = doc.get("by", {})
    return erasure_pb2.ErasureCertificate(
        id=doc["_id"],
        tenant=doc["tenant"],
        customer_ids=doc.get("customer_ids", []),
        erased_at=to_timestamp(doc.get("erased_at")),
        by=erasure_pb2.ErasureActor(
            subject=by.get("subject", ""), display_name=by.get("display_name", "")
        ),
        reason=doc.get("reason", ""),
        key_ids=doc.get("key_ids", []),
        suppressed_identifiers=doc.get("suppressed_identifiers", 0),
        counts=erasure_pb2.AnonymousCounts(
            contacts=counts.get("contacts", 0),
            contacts_by_channel=counts.get("contacts_by_channel", {}),
            csat_scores=counts.get("csat_scores", []),
            cancellation_reasons=counts.get("cancellation_reasons", {}),
        ),
    )


class ErasureApi(erasure_pb2_grpc.ErasureServiceServicer):
    """Erasure for the gateway's privacy officers; None: encryption is off, nothing to shred."""

    def __init__(self, eraser: Eraser | None) -> None:
        self._eraser = eraser

    async def _checked(self, tenant: str, customer_id: str, context: Context) -> Eraser:
        try:
            check_tenant(tenant)
        except ContractViolation as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if not customer_id or len(customer_id) > MAX_ID_LENGTH:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"customer_id: 1..{MAX_ID_LENGTH} characters"
            )
        if self._eraser is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "encryption is off (TSUNAGU_KEY_FILE unset): there are no keys to shred",
            )
        assert self._eraser is not None
        return self._eraser

    async def EraseCustomer(
        self, request: erasure_pb2.EraseCustomerRequest, context: Context
    ) -> erasure_pb2.EraseCustomerResponse:
        eraser = await self._checked(request.tenant, request.customer_id, context)
        actor = {"subject": request.actor.subject, "display_name": request.actor.display_name}
        if not actor["subject"] or any(len(v) > MAX_ACTOR_CHARS for v in actor.values()):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "actor.subject: 1..256 characters required"
            )
        if not request.reason.strip() or len(request.reason) > MAX_REASON_CHARS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"reason: 1..{MAX_REASON_CHARS} characters"
            )
        try:
            certificate = await eraser.erase(
                request.tenant, request.customer_id, reason=request.reason, actor=actor
            )
        except NothingToErase as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return erasure_pb2.EraseCustomerResponse(certificate=certificate_to_proto(certificate))

    async def GetErasureStatus(
        self, request: erasure_pb2.GetErasureStatusRequest, context: Context
    ) -> erasure_pb2.GetErasureStatusResponse:
        eraser = await self._checked(request.tenant, request.customer_id, context)
        certificates = await eraser.erasure.certificates(request.tenant, request.customer_id)
        return erasure_pb2.GetErasureStatusResponse(
            certificates=[certificate_to_proto(c) for c in certificates],
            previously_erased=await eraser.previously_erased(request.tenant, request.customer_id),
        )
