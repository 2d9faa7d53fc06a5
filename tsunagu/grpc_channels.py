"""Client channels whose calls present a bearer token, over TLS when configured."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

Options = Sequence[tuple[str, Any]]

if TYPE_CHECKING:  # generic in the stubs only
    _UnaryInterceptor = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
else:
    _UnaryInterceptor = grpc.aio.UnaryUnaryClientInterceptor


def _with_token(details: grpc.aio.ClientCallDetails, header: str) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata["authorization"] = header
    return grpc.aio.ClientCallDetails(
        method=details.method,
        timeout=details.timeout,
        metadata=metadata,
        credentials=details.credentials,
        wait_for_ready=details.wait_for_ready,
    )


class _UnaryBearer(_UnaryInterceptor):
    def __init__(self, header: str) -> None:
        self._header = header

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(_with_token(client_call_details, self._header), request)


def open_channel(
    address: str,
    *,
    token: str | None = None,
    tls: grpc.ChannelCredentials | None = None,
    options: Options = (),
) -> grpc.aio.Channel:
    """A channel to `address` whose unary calls carry `authorization: Bearer <token>`.

    Every Tsunagu RPC is unary; a streaming call (server reflection) passes the metadata
    itself. The token goes as call metadata rather than call credentials, which gRPC sends
    over TLS only: a local run is plaintext on the loopback interface, production is TLS
    (`tsunagu.grpc_tls.channel_credentials`).

    Args:
        address: ``host:port``.
        token: The caller's bearer token; None sends none (mTLS or health checks).
        tls: TLS credentials; None opens a plaintext channel.
        options: Channel options, e.g. message size limits.
    """
    interceptors: list[Any] = [_UnaryBearer(f"Bearer {token}")] if token else []
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(address, tls, options=options, interceptors=interceptors)
