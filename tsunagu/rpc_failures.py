"""gRPC servers answer an unexpected failure without its message, and log it without data.

Left to itself, grpc.aio logs a servicer's exception with its traceback and sends the
exception's text to the client as the status details: for a driver error that is the
document it quoted, which then also reaches the caller's logs. This interceptor logs the
method, the exception classes and the frames (`tsunagu.tracebacks.frames_only`), and answers
`UNKNOWN` with fixed details.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from tsunagu.grpc_auth import ServerInterceptor
from tsunagu.tracebacks import exception_name, frames_only

log = logging.getLogger(__name__)

UNEXPECTED_DETAILS = "unexpected error; the server logged it"

_Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


def _guarded(method: str, behavior: _Behavior) -> _Behavior:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise  # the servicer's own, deliberate status
        except Exception as exc:  # noqa: BLE001 - every unexpected failure, answered the same way
            log.error("%s failed: %s\n%s", method, exception_name(exc), frames_only(exc))
            await context.abort(grpc.StatusCode.UNKNOWN, UNEXPECTED_DETAILS)

    return call


class ScrubbedFailures(ServerInterceptor):
    """Wraps every unary-unary method (the query APIs); streaming ones pass through."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        # None: no such method (gRPC answers UNIMPLEMENTED); the stubs do not say so.
        if handler is None or handler.unary_unary is None:
            return handler
        behavior: _Behavior = handler.unary_unary  # type: ignore[assignment]  # aio: async
        return grpc.unary_unary_rpc_method_handler(
            _guarded(handler_call_details.method, behavior),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
