"""Connecting to NATS with the reconnect behaviour every Tsunagu process wants."""

from __future__ import annotations

import contextlib
import logging

from nats.aio.client import Client
from nats.js import JetStreamContext

from tsunagu.lifecycle import Lifecycle

log = logging.getLogger(__name__)


async def _on_error(exc: Exception) -> None:
    log.warning("nats: %s", exc)


async def _on_disconnect() -> None:
    # Also logged on every orderly shutdown; a real outage shows up as errors and reconnects.
    log.info("nats: disconnected")


async def _on_reconnect() -> None:
    log.info("nats: reconnected")


class NatsConnection(Lifecycle):
    """A NATS client built before it connects, so a composition root can wire it synchronously.

    `jetstream` is usable for wiring at once and for publishing once `open()` returned. The
    first connection fails fast (start-up fails with a clear error) rather than retrying
    silently behind a service that reports itself healthy; once connected it reconnects
    forever in the background. `close()` drains.
    """

    def __init__(self, url: str, *, name: str) -> None:
        self.url = url
        self.name = name
        self.client = Client()
        self.jetstream: JetStreamContext = self.client.jetstream()

    async def open(self) -> None:
        await self.client.connect(
            self.url,
            name=self.name,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            # nats-py annotates this as int but sleeps for the float it is given.
            reconnect_time_wait=0.5,  # type: ignore[arg-type]
            connect_timeout=5,
            error_cb=_on_error,
            disconnected_cb=_on_disconnect,
            reconnected_cb=_on_reconnect,
        )

    async def close(self) -> None:
        if not self.client.is_closed and (self.client.is_connected or self.client.is_reconnecting):
            with contextlib.suppress(Exception):
                await self.client.drain()


async def connect(url: str, *, name: str) -> Client:
    """Connect to NATS (see `NatsConnection`); the caller drains the client."""
    connection = NatsConnection(url, name=name)
    await connection.open()
    return connection.client
