"""The gateway's health endpoints: ``/livez`` (the process), ``/readyz`` (its dependencies).

Liveness never looks at a dependency: a timeline or NATS outage is no reason to restart the
gateway (it reconnects by itself), only to take it out of load balancing, which is what
readiness is for. ``/healthz`` is kept as an alias of readiness: it tells the truth now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from gateway.bus import GatewayBus
    from gateway.timeline_client import TimelineClient

LIVE_PATH = "/livez"
READY_PATH = "/readyz"
HEALTH_PATH = "/healthz"

# Below the readiness probe's timeoutSeconds (deploy/k8s/base/gateway.yaml): an answer,
# even "timeline down", always arrives before the kubelet gives up on the probe.
TIMELINE_CHECK_SECONDS = 2.0
# The states of each dependency in which the gateway can serve.
_UP = {"timeline": "SERVING", "nats": "CONNECTED"}


class Readiness(TypedDict):
    """The body of ``/readyz``: each dependency's state, and the names of those that are down."""

    ready: bool
    down: list[str]
    checks: dict[str, str]


def health_routes(
    *, timeline: TimelineClient, bus: GatewayBus, serving: Callable[[], bool]
) -> list[Route]:
    """The routes of the health endpoints.

    Args:
        timeline: Asked for the timeline's readiness (its gRPC health, by service name).
        bus: Its NATS connection state (notices and agent actions need it).
        serving: Whether the app's lifespan has started and not begun to stop.

    Returns:
        ``/livez``, ``/readyz`` and ``/healthz`` (the same as ``/readyz``).
    """

    async def live(request: Request) -> Response:  # noqa: ARG001 - Starlette's signature
        # Answering at all proves the event loop runs; nothing else is asked.
        return PlainTextResponse("ok\n")

    async def ready(request: Request) -> Response:  # noqa: ARG001 - Starlette's signature
        if serving():
            checks = {
                "timeline": await timeline.readiness(timeout_seconds=TIMELINE_CHECK_SECONDS),
                "nats": bus.connectivity(),
            }
        else:  # starting or stopping: no work should be sent here
            checks = {"gateway": "NOT_SERVING"}
        down = [name for name, state in checks.items() if _UP.get(name) != state]
        body = Readiness(ready=not down, down=down, checks=checks)
        return JSONResponse(body, status_code=503 if down else 200)

    return [
        Route(LIVE_PATH, live, methods=["GET"]),
        Route(READY_PATH, ready, methods=["GET"]),
        Route(HEALTH_PATH, ready, methods=["GET"]),
    ]
