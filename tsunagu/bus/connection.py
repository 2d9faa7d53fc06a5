"""Connecting to NATS with the reconnect behaviour every Tsunagu process wants."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from nats.aio.client import Client
from nats.js import JetStreamContext
from pydantic import SecretStr

from tsunagu.bus.permissions import inbox_prefix
from tsunagu.lifecycle import CannotStart, Lifecycle

log = logging.getLogger(__name__)


async def _on_error(exc: Exception) -> None:
    log.warning("nats: %s", exc)


async def _on_disconnect() -> None:
    # Also logged on every orderly shutdown; a real outage shows up as errors and reconnects.
    log.info("nats: disconnected")


async def _on_reconnect() -> None:
    log.info("nats: reconnected")


class NatsUnreachable(CannotStart, ConnectionError):
    """Start-up error: no first connection to NATS within the budget."""


# The first connection must succeed within this budget, or start-up fails.
CONNECT_BUDGET_SECONDS = 10.0

_OPTIONS: dict[str, Any] = {
    "allow_reconnect": True,
    "max_reconnect_attempts": -1,
    "reconnect_time_wait": 0.5,
    "connect_timeout": 5,
    "error_cb": _on_error,
    "disconnected_cb": _on_disconnect,
    "reconnected_cb": _on_reconnect,
}


@dataclass(frozen=True, slots=True)
class NatsLogin:
    """A service's NATS user and password (tsunagu.bus.permissions says what it may do)."""

    user: str
    password: str = field(repr=False)

    def options(self) -> dict[str, Any]:
        # Replies come to the user's own inbox: the only one its permissions let it read.
        return {
            "user": self.user,
            "password": self.password,
            "inbox_prefix": inbox_prefix(self.user),
        }


def without_credentials(url: str) -> str:
    """The URL with any `user:password@` removed: safe to log."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def nats_login(user: str, password: SecretStr) -> NatsLogin | None:
    """The login a service's settings name, or None when they name none (credentials in the URL)."""
    return NatsLogin(user, password.get_secret_value()) if user else None


class NatsConnection(Lifecycle):
    """A NATS client built before it connects, so a composition root can wire it synchronously.

    `jetstream` is usable for wiring at once and for publishing once `open()` returned. The
    first connection fails within `connect_budget_seconds` (start-up fails with a clear error)
    rather than retrying silently behind a service that reports itself healthy; once
    connected it reconnects forever in the background. `close()` drains.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        login: NatsLogin | None = None,
        connect_budget_seconds: float = CONNECT_BUDGET_SECONDS,
    ) -> None:
        self.url = url
        self.name = name
        self._login = login
        self.client = Client()
        self.jetstream: JetStreamContext = self.client.jetstream()
        self._budget = connect_budget_seconds
        self._listeners: list[Callable[[], object]] = []

    def on_connectivity_change(self, listener: Callable[[], object]) -> None:
        """Call `listener` after every disconnection and reconnection; register before `open()`.

        The listener reads `client.is_connected` itself: callbacks can arrive late or in bursts.
        """
        self._listeners.append(listener)

    async def _disconnected(self) -> None:
        await _on_disconnect()
        for listener in self._listeners:
            listener()

    async def _reconnected(self) -> None:
        await _on_reconnect()
        for listener in self._listeners:
            listener()

    async def open(self) -> None:
        try:
            # nats-py retries a failed first connection as long as it would reconnect: forever.
            async with asyncio.timeout(self._budget):
                await self.client.connect(
                    self.url,
                    name=self.name,
                    **{
                        **_OPTIONS,
                        "disconnected_cb": self._disconnected,
                        "reconnected_cb": self._reconnected,
                    },
                    **(self._login.options() if self._login else {}),
                )
        except (TimeoutError, OSError) as error:
            await self.client.close()
            raise NatsUnreachable(
                f"cannot connect to NATS at {without_credentials(self.url)} "
                f"within {self._budget:g}s (unreachable, or its credentials refused)"
            ) from error

    async def close(self) -> None:
        if not self.client.is_closed and (self.client.is_connected or self.client.is_reconnecting):
            with contextlib.suppress(Exception):
                await self.client.drain()


async def connect(url: str, *, name: str, login: NatsLogin | None = None) -> Client:
    """Connect to NATS (see `NatsConnection`); the caller drains the client.

    Raises:
        NatsUnreachable: No connection within the budget.
    """
    connection = NatsConnection(url, name=name, login=login)
    await connection.open()
    return connection.client
