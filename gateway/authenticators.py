"""Builds the authenticator the settings ask for: JWT, or development on loopback only."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from gateway.auth import Authenticator, Credentials, Principal
from gateway.jwks import JwksKeys
from gateway.settings import GatewaySettings
from gateway.tokens import ClaimNames, JwtAuthenticator, TokenRules

_log = logging.getLogger(__name__)


class AuthenticationNotConfigured(RuntimeError):
    """Start-up error: the configured authentication mode cannot run."""


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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _jwt(settings: GatewaySettings) -> JwtAuthenticator:
    if not settings.jwt_jwks_url:
        raise AuthenticationNotConfigured(
            "JWT authentication needs TSUNAGU_GATEWAY_JWT_JWKS_URL, _JWT_ISSUER and _JWT_AUDIENCE"
        )
    try:
        rules = TokenRules(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            algorithms=frozenset(settings.jwt_algorithms),
            leeway_seconds=settings.jwt_leeway_seconds,
        )
    except ValueError as error:
        raise AuthenticationNotConfigured(str(error)) from None
    keys = JwksKeys(
        settings.jwt_jwks_url,
        cache_seconds=settings.jwks_cache_seconds,
        min_refetch_seconds=settings.jwks_min_refetch_seconds,
    )
    claims = ClaimNames(
        tenant=settings.jwt_tenant_claim,
        subject=settings.jwt_subject_claim,
        display_name=settings.jwt_name_claim,
        roles=settings.jwt_roles_claim,
    )
    return JwtAuthenticator(keys=keys, rules=rules, claims=claims)


def build_authenticator(settings: GatewaySettings) -> Authenticator:
    """Build the authenticator that ``settings.auth_mode`` asks for.

    Args:
        settings: The gateway settings.

    Returns:
        The authenticator.

    Raises:
        AuthenticationNotConfigured: JWT settings are missing or unsafe, or development
            mode was asked for on a non-loopback address.
    """
    if settings.auth_mode == "jwt":
        return _jwt(settings)
    if not _is_loopback(settings.host):
        raise AuthenticationNotConfigured(
            f"development authentication lets anyone in; it refuses to listen on "
            f"{settings.host!r} (loopback only). Use TSUNAGU_GATEWAY_AUTH_MODE=jwt"
        )
    return DevelopmentAuthenticator(
        tenant=settings.dev_tenant,
        roles=settings.dev_roles,
        subject=settings.dev_subject,
        display_name=settings.dev_display_name,
    )
