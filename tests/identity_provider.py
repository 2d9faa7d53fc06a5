"""A real test identity provider: local issuers whose keys are served as a JWKS on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from gateway.auth import Authenticator, Credentials, Principal
from gateway.settings import GatewaySettings
from tests.action_keys import session_action_keys
from tsunagu.local.issuer import AUDIENCE, ISSUER, JwksServer, LocalIssuer


class TestIdentityProvider:
    """Publishes the keys of ``issuers`` (more may be added: key rotation)."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.issuer = LocalIssuer.generate()
        self.published: list[LocalIssuer] = [self.issuer]
        self.jwks_url = ""
        self.jwks_requests = 0

    def keys(self) -> list[dict[str, object]]:
        self.jwks_requests += 1
        return [issuer.jwk() for issuer in self.published]

    def bearer(self, *, tenant: str, roles: Iterable[str] = ("agent",), **claims: Any) -> str:
        """An ``Authorization`` header value with a valid token of the published issuer."""
        return f"Bearer {self.issuer.mint(tenant=tenant, roles=roles, **claims)}"

    def settings(self, **overrides: Any) -> GatewaySettings:
        """Gateway settings validating this provider's tokens; defaults, whatever the env says."""
        jwt: dict[str, Any] = {
            "auth_mode": "jwt",
            "jwt_issuer": ISSUER,
            "jwt_audience": AUDIENCE,
            "jwt_jwks_url": self.jwks_url,
            "action_signing_key_file": session_action_keys().private,
        }
        return GatewaySettings.model_construct(**{**jwt, **overrides})


async def principal_of(authenticator: Authenticator, token: str) -> Principal:
    """Who ``authenticator`` says the bearer of ``token`` (sent as a header) is."""
    return await authenticator.authenticate(
        Credentials(headers={"authorization": f"Bearer {token}"})
    )


@asynccontextmanager
async def identity_provider(
    provider: TestIdentityProvider | None = None,
) -> AsyncIterator[TestIdentityProvider]:
    """A test identity provider (or ``provider``) with its JWKS served on a free loopback port.

    Passing one lets a test module mint tokens at import time, before anything is served.
    """
    provider = provider or TestIdentityProvider()
    async with JwksServer(provider.keys) as server:
        provider.jwks_url = server.url
        yield provider
