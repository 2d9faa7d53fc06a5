"""Connecting to NATS with the reconnect behaviour every Tsunagu process wants."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self
from urllib.parse import urlsplit, urlunsplit

from nats.aio.client import Client
from nats.js import JetStreamContext
from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator

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


@dataclass(frozen=True, slots=True)
class NatsTls:
    """How a client reaches a NATS server that requires TLS (the production configuration).

    Attributes:
        ca_file: The CA that signed the server's certificate; None trusts the system's CAs.
        cert_file: The client's certificate, for a server that verifies clients.
        key_file: Its private key.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def options(self) -> dict[str, Any]:
        """nats-py's connect options: TLS from the first byte, verified against ``ca_file``.

        The handshake comes before the server's INFO (the server's `handshake_first`), so
        nothing in the clear can tell the client that TLS is not needed: no downgrade.
        """
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file is not None:
            context.load_cert_chain(
                str(self.cert_file), str(self.key_file) if self.key_file else None
            )
        return {"tls": context, "tls_handshake_first": True}


def _shared(name: str) -> Any:
    # One variable for every process: they all reach the same NATS with the same CA.
    return Field(default=None, validation_alias=AliasChoices(name, f"TSUNAGU_{name.upper()}"))


class NatsTlsSettings(BaseModel):
    """The NATS TLS settings every process's settings class includes.

    Read from ``TSUNAGU_NATS_TLS_CA_FILE``, ``TSUNAGU_NATS_TLS_CERT_FILE`` and
    ``TSUNAGU_NATS_TLS_KEY_FILE``, shared by every process; unset: plaintext (local runs).
    """

    nats_tls_ca_file: Path | None = _shared("nats_tls_ca_file")
    nats_tls_cert_file: Path | None = _shared("nats_tls_cert_file")
    nats_tls_key_file: Path | None = _shared("nats_tls_key_file")

    @model_validator(mode="after")
    def _cert_with_key(self) -> Self:
        if (self.nats_tls_cert_file is None) != (self.nats_tls_key_file is None):
            raise ValueError("nats_tls_cert_file and nats_tls_key_file go together")
        return self

    @property
    def nats_tls(self) -> NatsTls | None:
        """The TLS a client connects with, or None for plaintext."""
        if self.nats_tls_ca_file is None and self.nats_tls_cert_file is None:
            return None
        return NatsTls(self.nats_tls_ca_file, self.nats_tls_cert_file, self.nats_tls_key_file)


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


class NatsClientSettings(Protocol):
    """What a process's settings say about reaching NATS (every service's settings class)."""

    @property
    def nats_url(self) -> str: ...

    @property
    def nats_user(self) -> str: ...

    @property
    def nats_password(self) -> SecretStr: ...

    @property
    def nats_tls(self) -> NatsTls | None: ...


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
        tls: NatsTls | None = None,
        connect_budget_seconds: float = CONNECT_BUDGET_SECONDS,
    ) -> None:
        self.url = url
        self.name = name
        self._login = login
        self._tls = tls
        self.client = Client()
        self.jetstream: JetStreamContext = self.client.jetstream()
        self._budget = connect_budget_seconds
        self._listeners: list[Callable[[], object]] = []

    @classmethod
    def for_settings(cls, settings: NatsClientSettings, *, name: str) -> NatsConnection:
        """The connection `settings` describe: URL, the service's own NATS user, and TLS."""
        return cls(
            settings.nats_url,
            name=name,
            login=nats_login(settings.nats_user, settings.nats_password),
            tls=settings.nats_tls,
        )

    # Between reconnect attempts; set before `open()` (a test that needs a long gap raises it).
    reconnect_wait_seconds: float = _OPTIONS["reconnect_time_wait"]

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
                        "reconnect_time_wait": self.reconnect_wait_seconds,
                    },
                    **(self._login.options() if self._login else {}),
                    **(self._tls.options() if self._tls else {}),
                )
        except (TimeoutError, OSError) as error:
            await self.client.close()
            raise NatsUnreachable(
                f"cannot connect to NATS at {without_credentials(self.url)} "
                f"within {self._budget:g}s (unreachable, its credentials refused, or TLS failed)"
            ) from error

    async def close(self) -> None:
        if not self.client.is_closed and (self.client.is_connected or self.client.is_reconnecting):
            with contextlib.suppress(Exception):
                await self.client.drain()


async def connect(
    url: str, *, name: str, login: NatsLogin | None = None, tls: NatsTls | None = None
) -> Client:
    """Connect to NATS (see `NatsConnection`); the caller drains the client.

    Raises:
        NatsUnreachable: No connection within the budget.
    """
    connection = NatsConnection(url, name=name, login=login, tls=tls)
    await connection.open()
    return connection.client


async def connect_as(settings: NatsClientSettings, *, name: str) -> Client:
    """Connect as `settings` describe (see `NatsConnection.for_settings`); the caller drains.

    Raises:
        NatsUnreachable: No connection within the budget.
    """
    connection = NatsConnection.for_settings(settings, name=name)
    await connection.open()
    return connection.client
