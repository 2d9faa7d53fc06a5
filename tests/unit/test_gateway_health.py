"""The gateway's liveness and readiness over real HTTP, against a real gRPC timeline and NATS.

The timeline is the fake one served as the real one is (tsunagu.rpc.GrpcServer, with gRPC
health); each test has a nats-server of its own, which it stops and starts again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
from tenacity import AsyncRetrying, retry_if_result, stop_after_delay, wait_fixed

from gateway.app import bootstrap
from gateway.server import create_server
from gateway.settings import GatewaySettings
from tests.action_keys import session_action_keys
from tests.conftest import _quiet_sink
from tests.unit.test_gateway_schema import serving_fake_timeline
from tsunagu.local.processes import NatsServer

# Generous: two shared cores, and nats-py notices a lost server only when a read fails.
DEADLINE_SECONDS = 60.0
_POLL_SECONDS = 0.2


@asynccontextmanager
async def serving_gateway(timeline_address: str, nats_url: str) -> AsyncIterator[str]:
    """The gateway on a free port; yields its base URL."""
    settings = GatewaySettings.model_construct(
        auth_mode="development",
        host="127.0.0.1",
        port=0,
        timeline_address=timeline_address,
        grpc_timeout_seconds=2.0,
        nats_url=nats_url,
        action_signing_key_file=session_action_keys().private,
    )
    async with create_server(bootstrap(settings), settings) as server:
        yield server.graphql_url.removesuffix("/graphql")


async def eventually(
    check: Callable[[], Awaitable[httpx.Response]], wanted: Callable[[httpx.Response], bool]
) -> httpx.Response:
    """Ask `check` until its answer is `wanted`; fails after DEADLINE_SECONDS."""
    answer: httpx.Response = await AsyncRetrying(
        retry=retry_if_result(lambda answer: not wanted(answer)),
        stop=stop_after_delay(DEADLINE_SECONDS),
        wait=wait_fixed(_POLL_SECONDS),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )(check)
    return answer


async def test_readyz_names_the_timeline_while_it_is_not_ready_or_gone_and_livez_stays_ok(
    tmp_path: Path,
) -> None:
    async with (
        NatsServer(tmp_path / "nats", sink=_quiet_sink) as nats,
        serving_fake_timeline() as (_, timeline),
        serving_gateway(timeline.address, nats.url) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
    ):
        up = await http.get("/readyz")
        assert up.status_code == 200
        assert up.json() == {
            "ready": True,
            "down": [],
            "checks": {"timeline": "SERVING", "nats": "CONNECTED"},
        }

        # The timeline lost its store: alive, answering, but not ready.
        await timeline.set_ready(False)
        not_ready = await http.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["down"] == ["timeline"]
        assert not_ready.json()["checks"]["timeline"] == "NOT_SERVING"
        assert (await http.get("/livez")).status_code == 200

        await timeline.set_ready(True)
        assert (await http.get("/readyz")).status_code == 200

        # Nothing answers for the timeline any more.
        await timeline.stop(0)
        gone = await http.get("/readyz")
        assert gone.status_code == 503
        assert gone.json()["down"] == ["timeline"]
        assert gone.json()["checks"]["timeline"] in {"UNAVAILABLE", "DEADLINE_EXCEEDED"}
        alias = await http.get("/healthz")
        assert (alias.status_code, alias.json()["down"]) == (503, ["timeline"])
        live = await http.get("/livez")
        assert live.status_code == 200
        assert live.text == "ok\n"


async def test_readyz_names_nats_while_the_gateway_reconnects_and_recovers_with_it(
    tmp_path: Path,
) -> None:
    store = tmp_path / "nats"
    first = NatsServer(store, sink=_quiet_sink, name="nats-first")
    async with serving_fake_timeline() as (_, timeline):
        await first.start()
        try:
            async with (
                serving_gateway(timeline.address, first.url) as base,
                httpx.AsyncClient(base_url=base, timeout=10) as http,
            ):
                assert (await http.get("/readyz")).status_code == 200

                await first.stop()
                down = await eventually(
                    partial(http.get, "/readyz"), lambda answer: answer.status_code == 503
                )
                assert down.json()["down"] == ["nats"]
                assert down.json()["checks"]["nats"] == "RECONNECTING"
                assert (await http.get("/livez")).status_code == 200

                again = NatsServer(store, port=first.port, sink=_quiet_sink, name="nats-again")
                async with again:
                    await eventually(
                        partial(http.get, "/readyz"), lambda answer: answer.status_code == 200
                    )
        finally:
            await first.stop()
