"""A grpc.aio server with the standard health service, reflection and graceful stop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tsunagu.lifecycle import Lifecycle

# Large enough for a full SubmitBatch; oversized requests are refused by gRPC with a clear status.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class GrpcServer(Lifecycle):
    """Serves `services` with health checks and reflection; health follows the lifecycle.

    Health is NOT_SERVING until `__aenter__` completes and again as soon as shutdown begins, so
    load balancers stop sending work before in-flight calls are drained.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        register: Callable[[grpc.aio.Server], None],
        service_names: Sequence[str],
        handlers: Sequence[grpc.GenericRpcHandler[Any, Any]] = (),
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._server = grpc.aio.server(
            handlers=list(handlers),
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        register(self._server)
        # The asyncio servicer is re-exported as `health.aio` at run time; the stubs miss it.
        self._health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._names = list(service_names)
        reflection.enable_server_reflection(
            [*self._names, health.SERVICE_NAME, reflection.SERVICE_NAME], self._server
        )
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {host}:{port}")
        self.host = host

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def _set(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in ["", *self._names]:
            await self._health.set(name, status)

    async def start(self) -> None:
        await self._server.start()
        await self._set(health_pb2.HealthCheckResponse.SERVING)

    async def not_serving(self) -> None:
        """Tell health checks to send no more work (shutdown begins; calls still complete)."""
        await self._set(health_pb2.HealthCheckResponse.NOT_SERVING)

    async def stop(self, grace_seconds: float) -> None:
        await self.not_serving()
        await self._server.stop(grace_seconds)

    open = start

    async def close(self) -> None:
        await self.stop(5.0)
