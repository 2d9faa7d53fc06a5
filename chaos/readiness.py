"""Whether the whole system says it is ready: each gRPC service's readiness, the gateway's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chaos.load import RECONNECT_OPTIONS
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import ingest_pb2, timeline_pb2

_SERVING = health_pb2.HealthCheckResponse.SERVING
# One answer within this, or the service counts as not ready for this look.
_CHECK_S = 2.0


def _readiness_name(module: object, service: str) -> str:
    # Readiness is the served service's own health name; "" is liveness only.
    return str(module.DESCRIPTOR.services_by_name[service].full_name)  # type: ignore[attr-defined]


class Readiness:
    """Looks at readiness: the timeline's and each ingest's gRPC health, the gateway's /readyz."""

    def __init__(self, probes: list[tuple[health_pb2_grpc.HealthStub, str]], gateway: str) -> None:
        self._probes = probes
        self._gateway = gateway

    async def _grpc(self, stub: health_pb2_grpc.HealthStub, name: str) -> bool:
        request = health_pb2.HealthCheckRequest(service=name)
        try:
            answer = await stub.Check(request, timeout=_CHECK_S)
        except grpc.aio.AioRpcError:
            return False
        return bool(answer.status == _SERVING)

    async def _http(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=_CHECK_S) as client:
                return (await client.get(self._gateway)).status_code == 200
        except httpx.HTTPError:
            return False

    async def all_ready(self) -> bool:
        looks = await asyncio.gather(self._http(), *(self._grpc(s, n) for s, n in self._probes))
        return all(looks)


@asynccontextmanager
async def readiness(stack: LocalStack) -> AsyncIterator[Readiness]:
    """Health channels (probes carry no credentials) to every service of `stack`."""
    timeline = _readiness_name(timeline_pb2, "TimelineService")
    ingest = _readiness_name(ingest_pb2, "IngestService")
    targets = [(stack.timeline_address, timeline)]
    targets += [(address, ingest) for address in stack.ingest_addresses.values()]
    async with AsyncExitStack() as channels:
        probes = []
        for address, name in targets:
            channel = grpc.aio.insecure_channel(address, options=RECONNECT_OPTIONS)
            await channels.enter_async_context(channel)
            probes.append((health_pb2_grpc.HealthStub(channel), name))
        gateway = stack.graphql_url.rsplit("/", 1)[0] + "/readyz"
        yield Readiness(probes, gateway)
