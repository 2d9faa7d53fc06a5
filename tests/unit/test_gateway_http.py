"""The gateway over real HTTP and WebSockets: uvicorn, the ASGI app, and ``python -m gateway``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.app import bootstrap
from gateway.rate_limits import RateLimits
from gateway.server import create_server
from tests.action_keys import session_action_keys
from tests.identity_provider import TestIdentityProvider, identity_provider
from tests.unit.test_gateway_schema import (
    PHONE_AS_TYPED,
    TENANT,
    FakeTimeline,
    running_fake_timeline,
)
from tsunagu.local.processes import NatsServer

REPO_ROOT = Path(__file__).resolve().parents[2]
# How long a gateway may take to start or stop: `python -m gateway` alone imports for several
# seconds, and on two cores shared with other test runs it once took more than 15.
STARTING = 60
# The module's IdP: its JWKS is served by the fixtures, and the gateway validates real JWTs.
IDP = TestIdentityProvider()
TOKEN = IDP.bearer(tenant=TENANT, subject="agent-7")
AUTH = {"authorization": TOKEN}
QUERY = {"query": '{ customer(id: "c-1") { id displayName } }'}


@asynccontextmanager
async def serving_gateway(
    nats_server: NatsServer, *, limits: RateLimits | None = None, **settings: Any
) -> AsyncIterator[tuple[FakeTimeline, str]]:
    """A fake timeline over gRPC and the gateway in front of it, on free ports; the gateway
    validates real JWTs of `IDP`, whose JWKS is served meanwhile. `settings` override;
    `limits` replaces the rate limits of the settings (a test's clock)."""
    async with running_fake_timeline() as (fake, timeline_address), identity_provider(IDP):
        config = IDP.settings(
            port=0,
            timeline_address=timeline_address,
            grpc_timeout_seconds=2.0,
            nats_url=nats_server.url,
            **settings,
        )
        server = create_server(bootstrap(config, limits=limits), config)
        serving = asyncio.create_task(server.serve())
        await asyncio.wait_for(server.ready.wait(), timeout=STARTING)
        assert server.started
        try:
            yield fake, server.graphql_url
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, timeout=10)


@pytest.fixture(scope="module")
async def served(nats_server: NatsServer) -> AsyncIterator[tuple[FakeTimeline, str]]:
    async with serving_gateway(nats_server) as served:
        yield served


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


def _base(url: str) -> str:
    return url.removesuffix("/graphql")


async def test_query_over_http_answers_for_the_principals_tenant(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient
) -> None:
    fake, url = served
    fake.requests.clear()

    response = await client.post(url, json=QUERY, headers=AUTH)

    assert response.status_code == 200
    assert response.json() == {"data": {"customer": {"id": "c-1", "displayName": "Yamada Hanako"}}}
    assert [request.tenant for request in fake.calls("GetCustomers")] == [TENANT]


async def test_query_by_get_works_too(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient
) -> None:
    _, url = served
    query = f'{{ customerByIdentifier(kind: PHONE, value: "{PHONE_AS_TYPED}") {{ id }} }}'

    response = await client.get(url, params={"query": query}, headers=AUTH)

    assert response.json() == {"data": {"customerByIdentifier": {"id": "c-1"}}}


async def test_request_without_credentials_is_401_unauthenticated(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient
) -> None:
    _, url = served

    response = await client.post(url, json=QUERY)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}


async def test_healthz_is_readiness_and_reports_the_timeline_and_nats(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient
) -> None:
    _, url = served

    response = await client.get(f"{_base(url)}/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "down": [],
        "checks": {"timeline": "SERVING", "nats": "CONNECTED"},
    }


async def test_browser_gets_graphiql(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient
) -> None:
    _, url = served

    response = await client.get(url, headers={"accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_unknown_path_and_bad_body_are_http_errors(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient
) -> None:
    _, url = served

    missing = await client.get(f"{_base(url)}/nope")
    not_json = await client.post(
        url, content=b"{", headers={**AUTH, "content-type": "application/json"}
    )
    too_big = await client.post(url, json={"query": "#" * (2 * 1024 * 1024)}, headers=AUTH)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "'
        for _ in range(32):
            yield b"#" * (64 * 1024)
        yield b'"}'

    # Chunked, without a Content-Length: the limit counts the bytes as they arrive.
    too_big_streamed = await client.post(
        url, content=chunks(), headers={**AUTH, "content-type": "application/json"}
    )

    assert missing.status_code == 404
    assert not_json.status_code == 400
    assert too_big.status_code == 413
    assert too_big_streamed.status_code == 413


async def _ws_messages(
    url: str, init_payload: dict[str, object], *messages: dict[str, Any]
) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    ws_url = url.replace("http://", "ws://")
    async with connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": init_payload}))
        received.append(json.loads(await ws.recv()))
        for message in messages:
            await ws.send(json.dumps(message))
        while len(received) < 1 + 2 * len(messages):
            received.append(json.loads(await ws.recv()))
    return received


async def test_graphql_transport_ws_authenticates_from_connection_params(
    served: tuple[FakeTimeline, str],
) -> None:
    fake, url = served
    fake.requests.clear()
    subscribe = {"id": "1", "type": "subscribe", "payload": QUERY}

    received = await _ws_messages(url, {"authorization": TOKEN}, subscribe)

    assert received == [
        {"type": "connection_ack"},
        {
            "id": "1",
            "type": "next",
            "payload": {"data": {"customer": {"id": "c-1", "displayName": "Yamada Hanako"}}},
        },
        {"id": "1", "type": "complete"},
    ]
    assert [request.tenant for request in fake.calls("GetCustomers")] == [TENANT]


@pytest.mark.parametrize(
    "init_payload",
    [{}, {"authorization": "Bearer not.a.token"}, {"authorization": TOKEN + "x"}],
    ids=["no token", "garbage", "bad signature"],
)
async def test_graphql_transport_ws_without_a_valid_token_is_closed_4401(
    served: tuple[FakeTimeline, str], init_payload: dict[str, object]
) -> None:
    _, url = served

    with pytest.raises(ConnectionClosed) as closed:
        await _ws_messages(url, init_payload)

    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "Unauthorized")


async def test_legacy_graphql_ws_protocol_is_refused(served: tuple[FakeTimeline, str]) -> None:
    _, url = served
    ws_url = url.replace("http://", "ws://")

    async with connect(ws_url, subprotocols=[Subprotocol("graphql-ws")]) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4406


async def test_python_m_gateway_prints_its_url_and_stops_gracefully(
    client: httpx.AsyncClient, nats_server: NatsServer
) -> None:
    env = {
        **os.environ,
        "TSUNAGU_GATEWAY_PORT": "0",
        # Nothing needs to listen there: the gateway serves (and reports it) without a timeline.
        "TSUNAGU_GATEWAY_TIMELINE_ADDRESS": "127.0.0.1:9",
        "TSUNAGU_GATEWAY_NATS_URL": nats_server.url,
        "TSUNAGU_GATEWAY_AUTH_MODE": "development",
        "TSUNAGU_GATEWAY_ACTION_SIGNING_KEY_FILE": str(session_action_keys().private),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        env=env,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), timeout=STARTING)).decode()
        # Before the ready line: where Prometheus scrapes it (its own port, not GraphQL's).
        assert first.startswith("metrics on http://127.0.0.1:"), first
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=STARTING)).decode()
        assert line.startswith("gateway listening on http://127.0.0.1:")
        url = line.removeprefix("gateway listening on ").strip()
        assert url.endswith("/graphql")

        scraped = await client.get(first.removeprefix("metrics on ").strip())
        assert scraped.status_code == 200
        assert "process_resident_memory_bytes" in scraped.text

        # Alive, but not ready: nothing answers for the timeline.
        live = await client.get(f"{_base(url)}/livez")
        assert live.status_code == 200
        for path in ("/readyz", "/healthz"):
            ready = await client.get(f"{_base(url)}{path}")
            assert ready.status_code == 503, path
            assert ready.json()["down"] == ["timeline"], path
            assert ready.json()["checks"]["nats"] == "CONNECTED", path

        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=STARTING)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    # uvicorn re-raises the signal once it has shut down cleanly, so the supervisor sees
    # "terminated by SIGTERM"; the log proves the shutdown ran its graceful path.
    assert process.returncode in {0, -signal.SIGTERM}, stderr.decode()
    assert b"timeline client closed" in stderr
    assert b"NATS connection closed" in stderr
    assert b"development authentication is ON" in stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TSUNAGU_GATEWAY_AUTH_MODE": "jwt"}, b"JWT authentication needs"),
        (
            {"TSUNAGU_GATEWAY_AUTH_MODE": "development", "TSUNAGU_GATEWAY_HOST": "0.0.0.0"},
            b"loopback only",
        ),
        # Without the key its agent actions would all be dead-lettered by the timeline.
        (
            {"TSUNAGU_GATEWAY_AUTH_MODE": "development"},
            b"TSUNAGU_GATEWAY_ACTION_SIGNING_KEY_FILE is not set",
        ),
        (
            {
                "TSUNAGU_GATEWAY_AUTH_MODE": "development",
                # A public key is no signing key.
                "TSUNAGU_GATEWAY_ACTION_SIGNING_KEY_FILE": str(session_action_keys().public),
            },
            b"no Ed25519 private key",
        ),
    ],
)
async def test_python_m_gateway_refuses_an_unsafe_authentication_setup(
    env: dict[str, str], message: bytes
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=STARTING)

    assert process.returncode == 2
    assert message in stderr


HOSTILE = {
    "too deep": (
        '{ customer(id: "c-1") { openCase { customer { openCase { customer { openCase { '
        "customer { openCase { customer { openCase { customer { id } } } } } } } } } } } }",
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "too many aliases": (
        "{ " + " ".join(f'a{n}: customer(id: "c-1") {{ id }}' for n in range(31)) + " }",
        "GRAPHQL_VALIDATION_FAILED",
    ),
    "huge": ('{ customer(id: "c-1") { ' + "id " * 5000 + "} }", "GRAPHQL_PARSE_FAILED"),
    "unknown field": ('{ customer(id: "c-1") { password } }', "GRAPHQL_VALIDATION_FAILED"),
    "unknown argument": (
        'mutation { addNote(customerId: "c-1", text: "x", tenant: "globex") { eventId } }',
        "GRAPHQL_VALIDATION_FAILED",
    ),
}


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_documents_are_refused_clearly_and_the_server_keeps_serving(
    served: tuple[FakeTimeline, str], client: httpx.AsyncClient, name: str
) -> None:
    fake, url = served
    fake.requests.clear()
    document, code = HOSTILE[name]

    refused = await client.post(url, json={"query": document}, headers=AUTH)
    normal = await client.post(url, json=QUERY, headers=AUTH)

    assert refused.status_code in {200, 400}
    assert [error["extensions"]["code"] for error in refused.json()["errors"]] == [code]
    assert normal.json() == {"data": {"customer": {"id": "c-1", "displayName": "Yamada Hanako"}}}
    assert len(fake.calls("GetCustomers")) == 1  # only the normal query reached the timeline
