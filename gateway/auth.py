"""The one authentication seam: who is calling, and for which tenant."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gateway.errors import ErrorCode, GatewayError
from gateway.settings import GatewaySettings

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. Every read is scoped to ``tenant``, never to an argument."""

    subject: str
    tenant: str
    roles: frozenset[str]
    # How the agent is named on the timeline ("Tanaka"); the subject when empty.
    display_name: str = ""


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
    """Turns credentials into a principal; real authentication (JWT) plugs in here."""

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


class DevelopmentAuthenticator:
    """Lets everybody in as one fixed development principal. Never for production."""

    def __init__(
        self,
        *,
        tenant: str,
        roles: Iterable[str],
        subject: str = "developer",
        display_name: str = "Developer",
    ) -> None:
        self._principal = Principal(
            subject=subject, tenant=tenant, roles=frozenset(roles), display_name=display_name
        )
        # Said loudly at start because this mode hands a tenant's data to anyone who asks.
        _log.warning(
            "development authentication is ON: every caller is %r of tenant %r with roles %s",
            self._principal.subject,
            tenant,
            sorted(self._principal.roles),
        )

    async def authenticate(self, credentials: Credentials) -> Principal:  # noqa: ARG002
        """Return the development principal, whatever was presented.

        Args:
            credentials: Ignored.

        Returns:
            The fixed development principal.
        """
        return self._principal


def build_authenticator(settings: GatewaySettings) -> Authenticator:
    """Build the authenticator that ``settings.auth_mode`` asks for.

    Args:
        settings: The gateway settings.

    Returns:
        The authenticator.

    Raises:
        AuthenticationNotConfigured: ``auth_mode`` is ``"jwt"``, which has no implementation yet.
    """
    if settings.auth_mode == "jwt":
        raise AuthenticationNotConfigured(
            "JWT authentication is not configured yet; set TSUNAGU_GATEWAY_AUTH_MODE=development "
            "for local use, or pass an Authenticator to gateway.app.bootstrap()"
        )
    return DevelopmentAuthenticator(
        tenant=settings.dev_tenant,
        roles=settings.dev_roles,
        subject=settings.dev_subject,
        display_name=settings.dev_display_name,
    )
