"""The local sign-in: a demo token for a role, only for the console's origin, refusing junk."""

from __future__ import annotations

import httpx
import jwt
import pytest

from tsunagu.local.issuer import LocalIssuer, jwks_app
from tsunagu.local.signin import SIGNIN_PATH, LocalSignIn

CONSOLE = "http://127.0.0.1:8123"


def _client(signin: LocalSignIn) -> httpx.AsyncClient:
    app = jwks_app(list, routes=signin.routes())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://issuer")


@pytest.fixture
def issuer() -> LocalIssuer:
    return LocalIssuer.generate()


@pytest.fixture
def signin(issuer: LocalIssuer) -> LocalSignIn:
    signin = LocalSignIn(issuer, tenant="demo")
    signin.allow_gateway(f"{CONSOLE}/graphql")
    return signin


@pytest.mark.parametrize("origin", [CONSOLE, "http://localhost:8123"])
async def test_the_console_gets_a_token_of_the_demo_tenant_for_the_role_chosen(
    issuer: LocalIssuer, signin: LocalSignIn, origin: str
) -> None:
    async with _client(signin) as client:
        response = await client.post(
            SIGNIN_PATH, json={"role": "supervisor"}, headers={"origin": origin}
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    claims = jwt.decode(
        response.json()["token"],
        jwt.PyJWK(issuer.jwk()).key,
        algorithms=["ES256"],
        audience=issuer.audience,
    )
    assert (claims["tenant"], claims["roles"]) == ("demo", ["supervisor"])


async def test_the_preflight_names_the_console_only(signin: LocalSignIn) -> None:
    async with _client(signin) as client:
        response = await client.options(SIGNIN_PATH, headers={"origin": CONSOLE})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == CONSOLE


@pytest.mark.parametrize(
    ("origin", "body", "status"),
    [
        # Another web page open in the same browser may not mint itself a token.
        ("https://evil.example", b'{"role": "agent"}', 403),
        (None, b'{"role": "agent"}', 403),
        (CONSOLE, b'{"role": "root"}', 400),
        (CONSOLE, b'{"role": ["agent"]}', 400),
        (CONSOLE, b"not json", 400),
        (CONSOLE, b"[]", 400),
        (CONSOLE, b"", 400),
        (CONSOLE, b'{"role": "' + b"a" * 10_000 + b'"}', 413),
    ],
)
async def test_hostile_sign_ins_mint_nothing(
    signin: LocalSignIn, origin: str | None, body: bytes, status: int
) -> None:
    headers = {"content-type": "application/json", **({"origin": origin} if origin else {})}
    async with _client(signin) as client:
        refused = await client.post(SIGNIN_PATH, content=body, headers=headers)
        # A refusal takes nothing down: the next good sign-in works.
        good = await client.post(SIGNIN_PATH, json={"role": "agent"}, headers={"origin": CONSOLE})
    assert refused.status_code == status
    assert "token" not in refused.text
    assert good.status_code == 200


async def test_before_the_gateway_listens_no_origin_may_sign_in(issuer: LocalIssuer) -> None:
    async with _client(LocalSignIn(issuer, tenant="demo")) as client:
        response = await client.post(
            SIGNIN_PATH, json={"role": "agent"}, headers={"origin": CONSOLE}
        )
    assert response.status_code == 403
