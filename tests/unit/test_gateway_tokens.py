"""Agents' JWTs against the real gateway over HTTP and WebSocket, keys from a real JWKS."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, cast

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.app import bootstrap
from gateway.auth import Credentials, Principal, Unauthenticated
from gateway.authenticators import AuthenticationNotConfigured, build_authenticator
from gateway.jwks import JwksKeys
from gateway.server import create_server
from gateway.tokens import ClaimNames, JwtAuthenticator, TokenRules
from tests.identity_provider import TestIdentityProvider, identity_provider, principal_of
from tests.unit.test_gateway_schema import TENANT, FakeTimeline, running_fake_timeline
from tsunagu.local.issuer import AUDIENCE, ISSUER, LocalIssuer
from tsunagu.local.processes import NatsServer

QUERY = {"query": '{ customer(id: "c-1") { id displayName } }'}
CUSTOMER = {"data": {"customer": {"id": "c-1", "displayName": "Yamada Hanako"}}}


@pytest.fixture(scope="module")
async def idp() -> AsyncIterator[TestIdentityProvider]:
    async with identity_provider() as provider:
        yield provider


@pytest.fixture(scope="module")
async def served(
    nats_server: NatsServer, idp: TestIdentityProvider
) -> AsyncIterator[tuple[FakeTimeline, str]]:
    """The gateway in JWT mode (as in production) in front of a fake timeline."""
    async with running_fake_timeline() as (fake, timeline_address):
        config = idp.settings(
            port=0,
            timeline_address=timeline_address,
            grpc_timeout_seconds=2.0,
            nats_url=nats_server.url,
            # Rotation is tested here: an unknown kid may refetch at once.
            jwks_min_refetch_seconds=0.0,
        )
        server = create_server(bootstrap(config), config)
        async with server:
            yield fake, server.graphql_url


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "agent-7",
        "name": "Tanaka",
        "tenant": TENANT,
        "roles": ["agent"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_with_public_key(issuer: LocalIssuer) -> str:
    """The classic confusion attack: HMAC keyed with the published public key."""
    public = jwt.PyJWK(issuer.jwk()).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    signature = hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _tampered(issuer: LocalIssuer) -> str:
    header, _, signature = issuer.sign(_claims()).split(".")
    payload = _b64(json.dumps(_claims(tenant="globex", roles=["admin"])).encode())
    return f"{header}.{payload}.{signature}"


def _unsigned(issuer: LocalIssuer) -> str:
    return jwt.encode(_claims(), key="", algorithm="none", headers={"kid": issuer.kid})


REFUSED: dict[str, Callable[[LocalIssuer], str]] = {
    "expired": lambda i: i.sign(_claims(exp=int(time.time()) - 120)),
    "not yet valid": lambda i: i.sign(_claims(nbf=int(time.time()) + 3600)),
    "tampered": _tampered,
    "wrong audience": lambda i: i.sign(_claims(aud="someone-else")),
    "other issuer": lambda i: i.sign(_claims(iss="https://evil.example")),
    "alg none": _unsigned,
    "HS256 with the public key": _hs256_with_public_key,
    "unpublished key": lambda _i: LocalIssuer.generate().sign(_claims()),
    "no tenant": lambda i: i.sign(_claims(tenant=None)),
    "empty tenant": lambda i: i.sign(_claims(tenant="")),
    "no subject": lambda i: i.sign(_claims(sub=None)),
    "no expiry": lambda i: i.sign(_claims(exp=None)),
    "roles of the wrong type": lambda i: i.sign(_claims(roles={"admin": True})),
    "roles list of non-strings": lambda i: i.sign(_claims(roles=[1, 2])),
    "garbage": lambda _i: "not.a.token",
}


def _assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert "data" not in body
    assert [error["extensions"]["code"] for error in body["errors"]] == ["UNAUTHENTICATED"]


async def test_valid_token_answers_for_the_tenant_in_its_claims(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient, idp: TestIdentityProvider
) -> None:
    fake, url = served
    fake.requests.clear()

    response = await client.post(
        url, json=QUERY, headers={"authorization": idp.bearer(tenant=TENANT)}
    )

    assert response.json() == CUSTOMER
    assert [request.tenant for request in fake.calls("GetCustomers")] == [TENANT]


@pytest.mark.parametrize("name", REFUSED)
async def test_invalid_tokens_are_401_and_reach_nothing(
    served: tuple[FakeTimeline, str],
    client: httpx.AsyncClient,
    idp: TestIdentityProvider,
    name: str,
) -> None:
    fake, url = served
    fake.requests.clear()
    token = REFUSED[name](idp.issuer)

    response = await client.post(url, json=QUERY, headers={"authorization": f"Bearer {token}"})

    _assert_unauthenticated(response)
    assert not fake.requests


async def test_missing_or_non_bearer_authorization_is_401(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient, idp: TestIdentityProvider
) -> None:
    _, url = served
    token = idp.issuer.mint(tenant=TENANT, roles=["agent"])

    missing = await client.post(url, json=QUERY)
    basic = await client.post(url, json=QUERY, headers={"authorization": f"Basic {token}"})
    in_url = await client.post(url, json=QUERY, params={"access_token": token})

    for response in (missing, basic, in_url):
        _assert_unauthenticated(response)


async def test_a_key_rotated_into_the_jwks_is_accepted_after_a_refetch(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient, idp: TestIdentityProvider
) -> None:
    _, url = served
    rotated = LocalIssuer.generate()
    token = rotated.mint(tenant=TENANT, roles=["agent"])
    headers = {"authorization": f"Bearer {token}"}

    before = await client.post(url, json=QUERY, headers=headers)
    idp.published.append(rotated)
    try:
        after = await client.post(url, json=QUERY, headers=headers)
    finally:
        idp.published.remove(rotated)

    _assert_unauthenticated(before)
    assert after.json() == CUSTOMER


async def _ws_init(url: str, payload: Mapping[str, object]) -> dict[str, Any]:
    async with connect(
        url.replace("http://", "ws://"), subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        message: dict[str, Any] = json.loads(await ws.recv())
        return message


@pytest.mark.parametrize("key", ["Authorization", "authorization"])
async def test_websocket_authenticates_from_the_connection_init_payload(
    served: tuple[FakeTimeline, str], idp: TestIdentityProvider, key: str
) -> None:
    _, url = served

    assert await _ws_init(url, {key: idp.bearer(tenant=TENANT)}) == {"type": "connection_ack"}


async def test_websocket_with_an_invalid_token_or_one_in_the_url_is_closed_4401(
    served: tuple[FakeTimeline, str], idp: TestIdentityProvider
) -> None:
    _, url = served
    expired = idp.issuer.sign(_claims(exp=int(time.time()) - 120))
    valid = idp.issuer.mint(tenant=TENANT, roles=["agent"])

    for ws_url, payload in [
        (url, {"Authorization": f"Bearer {expired}"}),
        (url, {}),
        (f"{url}?access_token={valid}", {}),
        (f"{url}?authorization=Bearer%20{valid}", {}),
    ]:
        with pytest.raises(ConnectionClosed) as closed:
            await _ws_init(ws_url, payload)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401


async def test_tokens_never_reach_the_log(
    served: tuple[FakeTimeline, str],
    client: httpx.AsyncClient,
    idp: TestIdentityProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, url = served
    forged = _tampered(idp.issuer)

    with caplog.at_level(logging.DEBUG):
        await client.post(url, json=QUERY, headers={"authorization": f"Bearer {forged}"})

    assert forged.split(".")[1] not in caplog.text


async def test_an_unknown_kid_refetches_the_jwks_at_most_once_per_interval(
    idp: TestIdentityProvider,
) -> None:
    keys = JwksKeys(idp.jwks_url, min_refetch_seconds=3600)
    authenticator = JwtAuthenticator(
        keys=keys,
        rules=TokenRules(issuer=ISSUER, audience=AUDIENCE, algorithms=frozenset({"ES256"})),
        claims=ClaimNames(),
    )
    before = idp.jwks_requests
    strangers = [LocalIssuer.generate().sign(_claims()) for _ in range(5)]

    await authenticator.authenticate(
        Credentials(headers={"authorization": idp.bearer(tenant=TENANT)})
    )
    results = await asyncio.gather(
        *(
            authenticator.authenticate(Credentials(headers={"authorization": f"Bearer {token}"}))
            for token in strangers
        ),
        return_exceptions=True,
    )

    assert all(isinstance(result, Unauthenticated) for result in results)
    assert idp.jwks_requests - before == 1


async def test_claim_names_are_configurable_with_nested_paths_and_string_roles(
    idp: TestIdentityProvider,
) -> None:
    # Keycloak-style: roles nested under realm_access; tenant in a custom claim.
    authenticator = build_authenticator(
        idp.settings(
            jwt_tenant_claim="org.id",
            jwt_roles_claim="realm_access.roles",
            jwt_name_claim="preferred_username",
        )
    )
    nested_claims = _claims(
        tenant=None,
        roles=None,
        org={"id": "globex"},
        realm_access={"roles": ["agent", "supervisor"]},
        preferred_username="suzuki",
    )
    nested = idp.issuer.sign(nested_claims)
    auth0_style = build_authenticator(idp.settings(jwt_tenant_claim="https://t.example/tenant"))
    namespaced = idp.issuer.sign(_claims(tenant=None, **{"https://t.example/tenant": "initech"}))
    scope_style = build_authenticator(idp.settings(jwt_roles_claim="scp"))
    spaced = idp.issuer.sign(_claims(scp="agent analyst"))

    principal = await authenticator.authenticate(
        Credentials(headers={}, connection_params={"Authorization": f"Bearer {nested}"})
    )
    spaced_principal = await principal_of(scope_style, spaced)

    assert principal == Principal(
        subject="agent-7",
        tenant="globex",
        roles=frozenset({"agent", "supervisor"}),
        display_name="suzuki",
    )
    # Accepted until its expiry plus the clock skew tolerated (30 s by default).
    assert principal.valid_until == cast("int", nested_claims["exp"]) + 30
    assert spaced_principal.roles == frozenset({"agent", "analyst"})
    assert (await principal_of(auth0_style, namespaced)).tenant == "initech"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"jwt_algorithms": ["HS256"]}, "asymmetric"),
        ({"jwt_algorithms": ["none"]}, "asymmetric"),
        ({"jwt_algorithms": []}, "asymmetric"),
        ({"jwt_audience": ""}, "issuer and audience"),
        ({"jwt_jwks_url": ""}, "JWKS_URL"),
    ],
)
def test_unsafe_or_incomplete_jwt_settings_refuse_to_start(
    idp: TestIdentityProvider, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(AuthenticationNotConfigured, match=message):
        build_authenticator(idp.settings(**overrides))
