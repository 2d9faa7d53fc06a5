"""Ingest readiness: SERVING only while NATS is connected and the streams it publishes to exist."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from tsunagu.bus.connection import NatsConnection
from tsunagu.lifecycle import Lifecycle
from tsunagu.rpc import GrpcServer

log = logging.getLogger(__name__)

# Between connectivity changes the streams are checked this often: a stream deleted (or a
# NATS restarted without its store) takes the service out of rotation within this time.
RECHECK_SECONDS = 10.0


class PublishReadiness(Lifecycle):
    """Keeps the gRPC readiness (the service's own health name) equal to "can publish now".

    NATS disconnecting or reconnecting wakes it at once (nats-py's callbacks); it also
    re-checks every `recheck_seconds`. Liveness (the overall health status) is left alone: a
    reconnecting NATS is no reason to restart the process. One task decides, from the
    connection's state as it is when it looks, so late or bursty callbacks cannot leave a
    stale answer behind.
    """

    def __init__(
        self,
        *,
        bus: NatsConnection,
        server: GrpcServer,
        streams: Sequence[str],
        recheck_seconds: float = RECHECK_SECONDS,
    ) -> None:
        self._bus = bus
        self._server = server
        self._streams = tuple(streams)
        self._recheck = recheck_seconds
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        bus.on_connectivity_change(self._changed.set)

    async def open(self) -> None:
        """Start following; the server was started SERVING once the streams were found."""
        self._task = asyncio.create_task(self._follow(), name="ingest-readiness")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def stopped(self) -> asyncio.Task[None]:
        """Completes only if following fails: the runner then stops the process (a crash)."""
        assert self._task is not None, "readiness is not being followed"
        return self._task

    async def _follow(self) -> None:
        ready = True
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._recheck):
                    await self._changed.wait()
            self._changed.clear()
            now = await self._can_publish()
            if now != ready:
                ready = now
                await self._server.set_ready(ready)
                if ready:
                    log.info("ready: NATS connected and stream(s) %s exist", self._names)
                else:
                    log.warning("not ready: NATS disconnected or stream(s) %s missing", self._names)

    @property
    def _names(self) -> str:
        return ", ".join(self._streams)

    async def _can_publish(self) -> bool:
        if not self._bus.client.is_connected:
            return False
        try:
            for name in self._streams:
                await self._bus.jetstream.stream_info(name)
        except NotFoundError:
            return False
        except (NatsError, TimeoutError):  # the connection dropped while asking
            return False
        return True
