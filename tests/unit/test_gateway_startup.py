"""Gateway start-up: settings from the environment, authentication mode, health before serving."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette

from gateway.app import bootstrap
from gateway.auth import Credentials, Principal
from gateway.authenticators import (
    AuthenticationNotConfigured,
    DevelopmentAuthenticator,
    build_authenticator,
)
from gateway.bus import BusNotReachable, GatewayBus
from gateway.settings import GatewaySettings
from gateway.timeline_client import TimelineClient
from tests.action_keys import ActionKeys, session_action_keys
from tests.unit.test_gateway_schema import serving_fake_timeline
from tests.unit.test_gateway_schema import unused_address as _unused
from tsunagu.local.processes import NatsServer


def test_settings_come_from_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAGU_GATEWAY_PORT", "9001")
    monkeypatch.setenv("TSUNAGU_GATEWAY_DEV_ROLES", '["agent", "supervisor"]')
    monkeypatch.setenv("TSUNAGU_GATEWAY_MASK_ERRORS", "true")
    monkeypatch.setenv("PORT", "1")  # unprefixed variables belong to someone else

    parsed = GatewaySettings()

    assert (parsed.port, parsed.dev_roles, parsed.mask_errors) == (
        9001,
        ["agent", "supervisor"],
        True,
    )
    assert (parsed.host, parsed.timeline_address, parsed.max_query_depth, parsed.auth_mode) == (
        "127.0.0.1",
        "127.0.0.1:50060",
        10,
        "jwt",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "70000"), ("AUTH_MODE", "magic"), ("GRPC_TIMEOUT_SECONDS", "0")],
)
def test_invalid_settings_fail_fast_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"TSUNAGU_GATEWAY_{name}", value)

    with pytest.raises(ValidationError, match=name.lower()):
        GatewaySettings()


async def test_development_mode_lets_everyone_in_as_the_dev_principal_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = GatewaySettings.model_construct(
        auth_mode="development", dev_tenant="acme", dev_roles=["agent", "admin"]
    )

    with caplog.at_level(logging.WARNING, logger="gateway.authenticators"):
        authenticator = build_authenticator(settings)
    principal = await authenticator.authenticate(Credentials(headers={}))

    assert isinstance(authenticator, DevelopmentAuthenticator)
    assert principal == Principal(
        subject="developer",
        tenant="acme",
        roles=frozenset({"agent", "admin"}),
        display_name="Developer",
    )
    assert "development authentication is ON" in caplog.text


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "gateway.internal"])
def test_development_mode_refuses_a_non_loopback_bind(host: str) -> None:
    settings = GatewaySettings.model_construct(auth_mode="development", host=host)

    with pytest.raises(AuthenticationNotConfigured, match="loopback only"):
        bootstrap(settings)


def test_jwt_mode_without_an_identity_provider_refuses_to_start() -> None:
    settings = GatewaySettings.model_construct(auth_mode="jwt")

    with pytest.raises(AuthenticationNotConfigured, match="JWT_JWKS_URL"):
        bootstrap(settings)


def _jwt_settings(**overrides: Any) -> GatewaySettings:
    """JWT settings of an IdP nobody asks here: these tests never authenticate a caller."""
    return GatewaySettings.model_construct(
        jwt_issuer="https://idp.example",
        jwt_audience="tsunagu-gateway",
        jwt_jwks_url="https://idp.example/.well-known/jwks.json",
        action_signing_key_file=session_action_keys().private,
        **overrides,
    )


def _client(app: Starlette) -> httpx.AsyncClient:
    """An HTTP client calling the ASGI app in-process (no server, no lifespan)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_readiness_is_503_until_the_lifespan_has_started_and_after_it_stopped(
    nats_server: NatsServer,
) -> None:
    async with serving_fake_timeline() as (_, timeline_server):
        timeline = TimelineClient(address=timeline_server.address, timeout_seconds=1)
        app = bootstrap(_jwt_settings(nats_url=nats_server.url), timeline=timeline)

        async with _client(app) as client:
            before = await client.get("/readyz")
            async with app.router.lifespan_context(app):
                during = await client.get("/readyz")
            after = await client.get("/readyz")

    assert before.status_code == 503
    assert before.json()["down"] == ["gateway"]
    assert during.status_code == 200
    assert during.json()["checks"] == {"timeline": "SERVING", "nats": "CONNECTED"}
    assert after.status_code == 503
    assert after.json()["down"] == ["gateway"]


async def test_start_up_fails_when_nats_cannot_be_reached(action_keys: ActionKeys) -> None:
    timeline = TimelineClient(address="127.0.0.1:9", timeout_seconds=1)
    # A port nothing listens on: the lifespan must fail (bounded), not hang or serve.
    bus = GatewayBus(
        url=f"nats://{_unused()}",
        publish_timeout_seconds=1,
        connect_budget_seconds=1,
        signer=action_keys.signer,
    )
    app = bootstrap(_jwt_settings(), timeline=timeline, bus=bus)

    with pytest.raises(BusNotReachable, match="cannot connect to NATS"):
        async with app.router.lifespan_context(app):
            pass
    assert timeline.connectivity() == "CLOSED"


# Without GraphiQL, GET on /graphql is refused altogether (405): queries stay out of URLs.
@pytest.mark.parametrize(("graphiql", "status"), [(True, 200), (False, 405)])
async def test_graphiql_is_served_only_when_enabled(graphiql: bool, status: int) -> None:
    app = bootstrap(_jwt_settings(graphiql=graphiql))

    async with _client(app) as client:
        response = await client.get("/graphql", headers={"accept": "text/html"})

    assert response.status_code == status
