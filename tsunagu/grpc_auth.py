"""A server interceptor that authenticates every gRPC call but health checks, and admits by kind."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health

from tsunagu.grpc_callers import (
    Caller,
    CallerKind,
    CallerRegistry,
    bearer_token,
    set_current_caller,
)

log = logging.getLogger(__name__)

# Probes (kubelet, load balancers) carry no credentials; health says nothing about data.
_HEALTH_PREFIX = f"/{health.SERVICE_NAME}/"
MISSING = "no credential: send metadata 'authorization: Bearer <token>' or a client certificate"
UNKNOWN = "unknown credential"

if TYPE_CHECKING:  # generic in the stubs only
    ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    ServerInterceptor = grpc.aio.ServerInterceptor

Admit = Callable[[Caller], str | None]
_Context = grpc.aio.ServicerContext[Any, Any]


def admit_kind(kind: CallerKind, *, channel: str = "") -> Admit:
    """Admit callers of one kind (and, for adapters, of one channel); others are refused."""

    def admit(caller: Caller) -> str | None:
        if caller.kind != kind:
            return f"{caller.name} is a {caller.kind} identity; this API serves {kind}s only"
        if channel and caller.channel != channel:
            return f"{caller.name} is an adapter for {caller.channel}, not {channel}"
        return None

    return admit


def certificate_identities(context: _Context) -> list[str]:
    """The client certificate's SAN URIs, then its subject CN (empty without a certificate)."""
    auth = context.auth_context()
    # "peer_uri": the URI SANs (SPIFFE ids and the like) of a verified client certificate.
    names = [*auth.get("peer_uri", []), *auth.get("x509_common_name", [])]
    return [name.decode() for name in names]


def _request_tenant(request: object) -> str | None:
    # Every query of the timeline names its tenant; ingest checks each event's own tenant.
    if isinstance(request, Message) and "tenant" in request.DESCRIPTOR.fields_by_name:
        tenant: str = getattr(request, "tenant")  # noqa: B009 - a field known only at run time
        return tenant
    return None


class CallerInterceptor(ServerInterceptor):
    """Authenticates each call (bearer token, else client certificate) and admits its caller.

    Unknown or missing credentials end the call with UNAUTHENTICATED; a known caller that
    `admit` refuses, or one naming a tenant it does not act for, with PERMISSION_DENIED. Both
    before the servicer runs. An admitted caller is `tsunagu.grpc_callers.current_caller()`.
    """

    def __init__(self, registry: CallerRegistry, *, admit: Admit) -> None:
        self._registry = registry
        self._admit = admit

    def _identify(self, context: _Context) -> Caller:
        # The server hands metadata over as (key, value) pairs.
        metadata = cast("Sequence[tuple[str, str | bytes]]", context.invocation_metadata() or ())
        for key, value in metadata:
            if key == "authorization" and isinstance(value, str):
                token = bearer_token(value)
                caller = self._registry.by_token(token) if token else None
                if caller is None:
                    raise _Refused(grpc.StatusCode.UNAUTHENTICATED, UNKNOWN)
                return caller
        identities = certificate_identities(context)
        if not identities:
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, MISSING)
        caller = self._registry.by_certificate(identities)
        if caller is None:
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, UNKNOWN)
        return caller

    async def _authenticate(self, method: str, request: object, context: _Context) -> None:
        try:
            caller = self._identify(context)
            if refusal := self._admit(caller):
                raise _Refused(grpc.StatusCode.PERMISSION_DENIED, refusal)
            tenant = _request_tenant(request)
            if tenant is not None and not caller.acts_for(tenant):
                raise _Refused(
                    grpc.StatusCode.PERMISSION_DENIED,
                    # Truncated: the tenant is the caller's input, and it is logged.
                    f"{caller.name} does not act for tenant {tenant[:64]!r}",
                )
        except _Refused as refused:
            # Names of callers and tenants only: what an operator needs to fix a credential.
            log.warning("%s refused %s: %s", refused.code.name, method, refused.message)
            await context.abort(refused.code, refused.message)
        set_current_caller(caller)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        # None (typed otherwise) for a method nobody serves: gRPC answers UNIMPLEMENTED.
        handler: grpc.RpcMethodHandler[Any, Any] | None = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_HEALTH_PREFIX):
            return handler  # type: ignore[return-value]
        return _guarded(handler, functools.partial(self._authenticate, method))


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Check = Callable[[object, _Context], Awaitable[None]]


def _guard(behavior: Callable[..., Any], check: Check, *, streaming_request: bool) -> Any:
    """`behavior` run only after `check` passed; `check` sees a unary request, else None."""
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: _Context) -> AsyncIterator[Any]:
            await check(None if streaming_request else request, context)
            async for response in behavior(request, context):
                yield response

        return stream

    async def unary(request: Any, context: _Context) -> Any:
        await check(None if streaming_request else request, context)
        result = behavior(request, context)
        return await result if inspect.isawaitable(result) else result

    return unary


def _guarded(
    handler: grpc.RpcMethodHandler[Any, Any], check: Check
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler like `handler` whose behavior runs `check` first."""
    codecs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        behavior = _guard(handler.unary_unary, check, streaming_request=False)
        return grpc.unary_unary_rpc_method_handler(behavior, **codecs)
    if handler.unary_stream is not None:
        behavior = _guard(handler.unary_stream, check, streaming_request=False)
        return grpc.unary_stream_rpc_method_handler(behavior, **codecs)
    if handler.stream_unary is not None:
        behavior = _guard(handler.stream_unary, check, streaming_request=True)
        return grpc.stream_unary_rpc_method_handler(behavior, **codecs)
    assert handler.stream_stream is not None
    behavior = _guard(handler.stream_stream, check, streaming_request=True)
    return grpc.stream_stream_rpc_method_handler(behavior, **codecs)
