"""A grpc.aio server with authenticated callers, TLS, health, optional reflection, graceful stop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tsunagu.contracts.limits import MAX_EVENT_BYTES
from tsunagu.grpc_settings import ServerSecurity
from tsunagu.lifecycle import Lifecycle
from tsunagu.rpc_failures import ScrubbedFailures

# Room for a message's own fields around its items (ids, cursors, per-item framing).
ENVELOPE_BYTES = 64 * 1024
# The largest response the timeline sends and the gateway's client receives: one number for
# both ends, so a page the timeline builds is always one the gateway can read (gRPC's 4 MiB
# default would not be). Sixteen of the largest events the contract admits fit in it;
# ListInteractions stops a longer page early by bytes.
MAX_RESPONSE_BYTES = 16 * MAX_EVENT_BYTES + ENVELOPE_BYTES
# Requests that carry no events (queries by id, pages, searches) stay far below this.
MAX_QUERY_REQUEST_BYTES = 1024 * 1024


# The largest batch request ingest receives, whatever its item limit: 32 of the largest
# events. A batch of many small events (the common case) has far more items than that; a batch
# of many large ones is refused whole with RESOURCE_EXHAUSTED and is sent in smaller batches.
MAX_BATCH_REQUEST_BYTES = 32 * MAX_EVENT_BYTES + ENVELOPE_BYTES


def batch_request_bytes(max_items: int, max_event_bytes: int) -> int:
    """The receive limit for batches of at most `max_items` events of `max_event_bytes` each,
    capped at `MAX_BATCH_REQUEST_BYTES`."""
    return min(max_items * max_event_bytes + ENVELOPE_BYTES, MAX_BATCH_REQUEST_BYTES)


class GrpcServer(Lifecycle):
    """Serves `services` to the callers `security` admits; health follows the lifecycle.

    Every call but health checks is authenticated (`tsunagu.grpc_auth`); with TLS
    credentials the port is TLS only. Reflection is served only when `security` enables it.

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
        security: ServerSecurity,
        handlers: Sequence[grpc.GenericRpcHandler[Any, Any]] = (),
        max_receive_bytes: int = MAX_QUERY_REQUEST_BYTES,
        max_send_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        # A request over `max_receive_bytes` is refused by gRPC with RESOURCE_EXHAUSTED before
        # any handler runs; a response over `max_send_bytes` fails the call, never the server.
        self._server = grpc.aio.server(
            handlers=list(handlers),
            # Authenticate first; then no exception text in logs or replies.
            interceptors=[security.interceptor, ScrubbedFailures()],
            options=[
                ("grpc.max_receive_message_length", max_receive_bytes),
                ("grpc.max_send_message_length", max_send_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        register(self._server)
        # The asyncio servicer is re-exported as `health.aio` at run time; the stubs miss it.
        self._health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._names = list(service_names)
        if security.reflection:
            reflection.enable_server_reflection(
                [*self._names, health.SERVICE_NAME, reflection.SERVICE_NAME], self._server
            )
        address = f"{host}:{port}"
        if security.credentials is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, security.credentials)
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {address}")
        self.host = host
        # Health alone on a plaintext port of its own, for probes that cannot present TLS or
        # credentials (kubelet's gRPC probe); the same servicer, so both ports agree.
        self._health_server: grpc.aio.Server | None = None
        self.health_port: int | None = None
        if security.health_port is not None:
            self._health_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self._health, self._health_server)
            self.health_port = self._health_server.add_insecure_port(
                f"{host}:{security.health_port}"
            )
            if self.health_port == 0:
                raise OSError(f"cannot bind the health port {host}:{security.health_port}")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def _set(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in ["", *self._names]:
            await self._health.set(name, status)

    async def start(self) -> None:
        await self._server.start()
        if self._health_server is not None:
            await self._health_server.start()
        await self._set(health_pb2.HealthCheckResponse.SERVING)

    async def set_ready(self, ready: bool) -> None:
        """Flip readiness while the process stays alive.

        The health service's overall status (service name ``""``) is liveness: SERVING from
        start until shutdown begins. Each served service's own name is readiness: it follows
        this call, so a dependency outage (store down, NATS reconnecting) takes the process
        out of load balancing without getting it restarted.

        Args:
            ready: Whether the service can do its work now.
        """
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._names:
            await self._health.set(name, status)

    async def not_serving(self) -> None:
        """Tell health checks to send no more work (shutdown begins; calls still complete)."""
        await self._set(health_pb2.HealthCheckResponse.NOT_SERVING)

    async def stop(self, grace_seconds: float) -> None:
        await self.not_serving()
        await self._server.stop(grace_seconds)
        if self._health_server is not None:
            await self._health_server.stop(None)

    open = start

    async def close(self) -> None:
        await self.stop(5.0)
