"""gRPC IngestService: decode → validate and normalise → publish → per-item result."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry import trace

from services.ingest.access import ForeignTenant, claim_tenant
from services.ingest.errors import InvalidInteraction
from services.ingest.pipeline import IngestPolicy, prepare
from tsunagu.bus.publisher import (
    InteractionPublisher,
    Published,
    PublishError,
    StreamFullError,
)
from tsunagu.contracts import ContractViolation, Reason
from tsunagu.grpc_callers import current_caller
from tsunagu.v1 import ingest_pb2, interaction_pb2

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

SERVICE_NAME = ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name
Result = ingest_pb2.SubmitResult


@dataclass(frozen=True, slots=True)
class Decoded:
    """One request item after lenient decoding: the interaction, or why it is unreadable."""

    interaction: interaction_pb2.Interaction | None
    error: str = ""


def _decode_item(data: bytes) -> Decoded:
    try:
        return Decoded(interaction_pb2.Interaction.FromString(data))
    except DecodeError as exc:
        # Typically invalid UTF-8 in a string field: protobuf refuses the whole message.
        return Decoded(None, f"not a valid tsunagu.v1.Interaction ({exc})")


def decode_submit(data: bytes) -> Decoded:
    try:
        envelope = ingest_pb2.SubmitRequestItem.FromString(data)
    except DecodeError as exc:
        return Decoded(None, f"not a valid SubmitRequest ({exc})")
    return _decode_item(envelope.interaction)


def decode_batch(data: bytes) -> list[Decoded] | Decoded:
    # SubmitBatchRequestItems is wire-compatible with SubmitBatchRequest but keeps every
    # item as bytes, so each item is decoded on its own and a bad one stays a per-item error.
    try:
        envelope = ingest_pb2.SubmitBatchRequestItems.FromString(data)
    except DecodeError as exc:
        return Decoded(None, f"not a valid SubmitBatchRequest ({exc})")
    return [_decode_item(item) for item in envelope.interactions]


def _rejected(index: int, event_id: str, field: str, reason: str) -> Result:
    return Result(
        index=index, event_id=event_id, status=Result.STATUS_REJECTED, field=field, reason=reason
    )


def _stored(index: int, event_id: str, published: Published) -> Result:
    status = Result.STATUS_DUPLICATE if published.duplicate else Result.STATUS_ACCEPTED
    return Result(index=index, event_id=event_id, status=status, stream_sequence=published.sequence)


async def _claim(items: list[Decoded], context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """Refuse the call unless its caller covers every event's tenant (filling implied ones)."""
    caller = current_caller()
    try:
        for item in items:
            if item.interaction is not None:
                claim_tenant(caller, item.interaction)
    except ForeignTenant as exc:
        log.warning("PERMISSION_DENIED: %s", exc)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))


async def _abort_invalid(
    context: grpc.aio.ServicerContext[Any, Any], field: str, reason: str
) -> None:
    detail = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=reason)
        ]
    )
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=f"{field}: {reason}")
    status.details.add().Pack(detail)
    rich = rpc_status.to_status(status)
    await context.abort(rich.code, rich.details, rich.trailing_metadata)


class IngestApi:
    """Accepts one channel's interactions; a result exists only once the stream stored them."""

    def __init__(
        self,
        publisher: InteractionPublisher,
        *,
        policy: IngestPolicy,
        clock: Callable[[], datetime],
        max_batch_items: int,
        on_rejected: Callable[[Reason], None] = lambda _reason: None,
    ) -> None:
        self._publisher = publisher
        self._on_rejected = on_rejected
        self._policy = policy
        self._clock = clock
        self._max_batch_items = max_batch_items

    def _prepare(self, decoded: Decoded) -> interaction_pb2.Interaction:
        try:
            if decoded.interaction is None:
                raise InvalidInteraction("interaction", decoded.error, code=Reason.MALFORMED)
            return prepare(decoded.interaction, policy=self._policy, now=self._clock())
        except ContractViolation as exc:
            self._on_rejected(exc.code)  # metrics: every refusal passes here, single or batch
            raise

    async def submit(
        self, request: Decoded, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ingest_pb2.SubmitResponse:
        await _claim([request], context)
        try:
            interaction = self._prepare(request)
        except ContractViolation as exc:
            await _abort_invalid(context, exc.field, exc.reason)
            raise
        try:
            published = await self._publisher.publish(interaction)
        except PublishError as exc:
            log.warning("event %s not stored: %s", interaction.event_id, exc)
            await context.abort(
                # A full stream is not a passing outage: it holds until an operator acts.
                grpc.StatusCode.RESOURCE_EXHAUSTED
                if isinstance(exc, StreamFullError)
                else grpc.StatusCode.UNAVAILABLE,
                f"not stored ({exc}); retry with the same event_id",
            )
            raise
        return ingest_pb2.SubmitResponse(result=_stored(0, interaction.event_id, published))

    async def submit_batch(
        self, request: list[Decoded] | Decoded, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ingest_pb2.SubmitBatchResponse:
        if isinstance(request, Decoded):
            await _abort_invalid(context, "interactions", request.error)
            raise AssertionError("unreachable")
        if len(request) > self._max_batch_items:
            await _abort_invalid(
                context,
                "interactions",
                f"{len(request)} items; at most {self._max_batch_items} per batch",
            )
        # One foreign event refuses the whole batch, before anything is published: it is an
        # adapter misconfigured or abused, not one bad item; a partial answer would tell a
        # prober which tenants it may write to, and PERMISSION_DENIED is a call's status.
        await _claim(request, context)
        results: list[Result | None] = [None] * len(request)
        ready: list[tuple[int, interaction_pb2.Interaction]] = []
        for index, decoded in enumerate(request):
            try:
                ready.append((index, self._prepare(decoded)))
            except ContractViolation as exc:
                event_id = decoded.interaction.event_id if decoded.interaction else ""
                results[index] = _rejected(index, event_id, exc.field, exc.reason)
        with tracer.start_as_current_span(
            "ingest.submit_batch", attributes={"tsunagu.batch.items": len(request)}
        ):
            outcomes = await self._publisher.publish_many([i for _, i in ready])
        for (index, interaction), outcome in zip(ready, outcomes, strict=True):
            if isinstance(outcome, PublishError):
                results[index] = Result(
                    index=index,
                    event_id=interaction.event_id,
                    status=Result.STATUS_REJECTED,
                    field="",
                    reason=f"not stored ({outcome}); retry with the same event_id",
                )
            else:
                results[index] = _stored(index, interaction.event_id, outcome)
        return ingest_pb2.SubmitBatchResponse(results=[r for r in results if r is not None])


def generic_handler(api: IngestApi) -> grpc.GenericRpcHandler[Any, Any]:
    """Routes IngestService methods with the lenient request decoders above."""
    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            "Submit": grpc.unary_unary_rpc_method_handler(
                api.submit,
                request_deserializer=decode_submit,
                response_serializer=ingest_pb2.SubmitResponse.SerializeToString,
            ),
            "SubmitBatch": grpc.unary_unary_rpc_method_handler(
                api.submit_batch,
                request_deserializer=decode_batch,
                response_serializer=ingest_pb2.SubmitBatchResponse.SerializeToString,
            ),
        },
    )
