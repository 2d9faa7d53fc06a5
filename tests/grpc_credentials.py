"""Test callers of the gRPC servers: their credentials, and tokens and channels for clients."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from tsunagu.grpc_auth import Admit, CallerInterceptor
from tsunagu.grpc_callers import (
    CREDENTIALS,
    CallerCredential,
    CallerRegistry,
    issue_credential,
)
from tsunagu.grpc_channels import open_channel
from tsunagu.grpc_settings import ServerSecurity

CHANNELS = ("chat", "voice", "email", "sms", "social", "web")
SERVICE = "gateway"


@dataclass
class CallerSet:
    """One adapter per channel for some tenants and a service identity for every tenant.

    Every server of a test gets all of `credentials`, as a deployment's servers share one
    list: each admits only its kind (and channel), so a known token of the wrong kind is
    PERMISSION_DENIED, not UNAUTHENTICATED.
    """

    credentials: list[CallerCredential] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    def add(self, credential: CallerCredential, token: str) -> str:
        self.credentials.append(credential)
        self.tokens[credential.name] = token
        return token

    def adapter(self, channel: str) -> str:
        """The token of the test's adapter for `channel`."""
        return self.tokens[f"adapter-{channel}"]

    @property
    def service(self) -> str:
        """The token of the service identity (the gateway's role: every tenant)."""
        return self.tokens[SERVICE]

    def security(self, admit: Admit) -> ServerSecurity:
        """Plaintext server security admitting these callers as `admit` says."""
        return ServerSecurity(CallerInterceptor(CallerRegistry(self.credentials), admit=admit))

    def json(self) -> str:
        """The credentials as a server's `*_CALLERS` setting (env var) takes them."""
        return CREDENTIALS.dump_json(self.credentials).decode()


def caller_set(tenants: Sequence[str]) -> CallerSet:
    callers = CallerSet()
    for channel in CHANNELS:
        name = f"adapter-{channel}"
        callers.add(*issue_credential(name, kind="adapter", tenants=tenants, channel=channel))
    callers.add(*issue_credential(SERVICE, kind="service", tenants=["*"]))
    return callers


def channel_for(address: str, token: str, **options: Any) -> grpc.aio.Channel:
    """A plaintext channel to a test server whose calls carry `token`."""
    return open_channel(address, token=token, options=list(options.items()))
