"""The one authentication seam: who is calling, and for which tenant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gateway.errors import ErrorCode, GatewayError


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. Every read is scoped to ``tenant``, never to an argument."""

    subject: str
    tenant: str
    roles: frozenset[str]
    # How the agent is named on the timeline ("Tanaka"); the subject when empty.
    display_name: str = ""
    # Unix time after which the credentials are no longer accepted (the token's `exp` plus
    # the clock skew tolerated); a WebSocket is closed then. None: they do not expire.
    # Not part of who the caller is: a refreshed token names the same principal.
    valid_until: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Credentials:
    """What a caller presented, whatever the transport.

    Attributes:
        headers: HTTP request headers, or the WebSocket handshake headers, by lowercase name.
        connection_params: The ``connection_init`` payload of a graphql-transport-ws
            connection (browsers cannot set headers on WebSockets); empty over HTTP.
    """

    headers: Mapping[str, str]
    connection_params: Mapping[str, object] = field(default_factory=dict)


class Unauthenticated(GatewayError):
    """The caller could not be authenticated."""

    def __init__(self, message: str = "Authentication required.") -> None:
        super().__init__(ErrorCode.UNAUTHENTICATED, message)


class AuthenticationNotConfigured(RuntimeError):
    """Start-up error: the configured authentication mode cannot run."""


class Authenticator(Protocol):
    """Turns credentials into a principal (gateway.tokens: from an OIDC/JWT bearer token)."""

    async def authenticate(self, credentials: Credentials) -> Principal:
        """Authenticate one HTTP request or one WebSocket connection.

        Args:
            credentials: Headers and, for WebSockets, the connection parameters.

        Returns:
            The caller.

        Raises:
            Unauthenticated: The credentials are missing or invalid.
        """
        ...
