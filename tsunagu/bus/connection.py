"""Connecting to NATS with the reconnect behaviour every Tsunagu process wants."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client

log = logging.getLogger(__name__)


async def connect(url: str, *, name: str) -> Client:
    """Connect to NATS; reconnect forever in the background once connected.

    The first connection fails fast (the caller's start-up fails with a clear error) rather
    than retrying silently behind a service that reports itself healthy.
    """

    async def on_error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    async def on_disconnect() -> None:
        # Also logged on every orderly shutdown; a real outage shows up as errors and reconnects.
        log.info("nats: disconnected")

    async def on_reconnect() -> None:
        log.info("nats: reconnected")

    return await nats.connect(
        url,
        name=name,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
    )
