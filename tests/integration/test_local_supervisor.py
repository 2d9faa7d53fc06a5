"""The local supervisor restarts what exits, with back-off; a failed start leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tsunagu.local.ports import PortInUseError
from tsunagu.local.processes import ManagedProcess
from tsunagu.local.restarts import Backoff, keep_running
from tsunagu.local.stack import LocalStack, StackPorts


class Lines:
    """A sink that keeps every prefixed line, as `make run` prints them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, name: str, line: str) -> None:
        self.lines.append(f"[{name}] {line}")

    def starting(self, prefix: str) -> list[str]:
        return [line for line in self.lines if line.startswith(prefix)]

    def saw(self, prefix: str, times: int = 1) -> Callable[[], bool]:
        """A condition: at least `times` lines start with `prefix`."""
        return lambda: len(self.starting(prefix)) >= times


async def until(condition: Callable[[], bool], *, within: float = 60.0) -> None:
    """Wait for `condition`, checking it often, up to a generous deadline."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.05)


def _flaky(lines: Lines, *, up_for: float) -> ManagedProcess:
    """A process that becomes ready, stays up `up_for` seconds, then exits with code 3."""
    script = f"import time; print('up', flush=True); time.sleep({up_for}); exit(3)"
    return ManagedProcess("flaky", [sys.executable, "-c", script], ready_pattern="^up$", sink=lines)


@contextlib.asynccontextmanager
async def _supervised(
    process: ManagedProcess, backoff: Backoff, lines: Lines
) -> AsyncIterator[None]:
    await process.start()
    restarts = asyncio.create_task(keep_running(process, backoff, lines))
    try:
        yield
    finally:
        restarts.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await restarts
        await process.stop()


async def test_a_crash_looping_process_keeps_backing_off_and_says_so() -> None:
    lines = Lines()
    process = _flaky(lines, up_for=0.3)

    async with _supervised(process, Backoff(first=0.1, cap=0.4), lines):
        await until(lines.saw("[flaky] restarted", 4))

    notices = lines.starting("[flaky] exited")[:4]
    assert notices == [
        "[flaky] exited with code 3; restarting in 0.1 s (restart 1)",
        "[flaky] exited with code 3; restarting in 0.2 s (restart 2)",
        "[flaky] exited with code 3; restarting in 0.4 s (restart 3); "
        "it failed 3 times in a row, backing off up to the cap",
        "[flaky] exited with code 3; restarting in 0.4 s (restart 4); "
        "it failed 4 times in a row, backing off up to the cap",
    ]
    pids = lines.starting("[flaky] restarted (pid ")
    assert len(set(pids)) == len(pids)


async def test_a_process_that_no_longer_starts_is_retried_and_the_reason_said(
    tmp_path: Path,
) -> None:
    lines = Lines()
    # Up once; from then on it fails at start-up, as a service whose dependency is broken.
    once = tmp_path / "started-once"
    script = (
        "import pathlib, sys, time; marker = pathlib.Path(sys.argv[1])\n"
        "if marker.exists(): sys.exit(2)\n"
        "marker.touch(); print('up', flush=True); time.sleep(0.3); sys.exit(3)"
    )
    process = ManagedProcess(
        "broken", [sys.executable, "-c", script, str(once)], ready_pattern="^up$", sink=lines
    )

    async with _supervised(process, Backoff(first=0.1, cap=0.2), lines):
        await until(lines.saw("[broken] exited with code 2", 3))

    assert lines.lines[:6] == [
        "[broken] up",
        "[broken] exited with code 3; restarting in 0.1 s (restart 1)",
        "[broken] exited before it was ready",
        "[broken] exited with code 2; restarting in 0.2 s (restart 2)",
        "[broken] exited before it was ready",
        "[broken] exited with code 2; restarting in 0.2 s (restart 3); "
        "it failed 3 times in a row, backing off up to the cap",
    ]


async def test_a_process_that_stayed_up_restarts_after_the_shortest_wait() -> None:
    lines = Lines()
    process = _flaky(lines, up_for=1.0)

    async with _supervised(process, Backoff(first=0.1, cap=10, stable_after=0.3), lines):
        await until(lines.saw("[flaky] restarted", 3))

    assert [line.split("; ")[1] for line in lines.starting("[flaky] exited")[:3]] == [
        "restarting in 0.1 s (restart 1)",
        "restarting in 0.1 s (restart 2)",
        "restarting in 0.1 s (restart 3)",
    ]


async def _health(address: str) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    async with aio.insecure_channel(address) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), wait_for_ready=True, timeout=60
        )
    return answer.status


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def _graphql_status(stack: LocalStack) -> int:
    """A GraphQL call with a token `make run` printed, as an agent's browser makes it."""
    token = json.loads(stack.credentials_file.read_text())["graphql"]["agent"]
    async with httpx.AsyncClient(timeout=60) as client:
        answer = await client.post(
            stack.graphql_url,
            json={"query": '{ customer(id: "nobody") { id } }'},
            headers={"authorization": token},
        )
    return answer.status_code


KILLED = ("timeline", "store", "gateway")


def _first(lines: list[str], pattern: str) -> int:
    return next(i for i, line in enumerate(lines) if re.match(pattern, line))


async def test_killed_processes_are_restarted_on_their_ports_and_the_others_keep_running(
    tmp_path: Path,
) -> None:
    lines = Lines()
    async with LocalStack(
        tmp_path,
        ports=StackPorts.free(),
        channels=("chat",),
        sink=lines,
        restarts=Backoff(first=0.2),
    ) as stack:
        before = {name: process.pid for name, process in stack.processes.items()}
        store_port = stack.processes["store"].port

        for killed in KILLED:
            os.kill(before[killed], signal.SIGKILL)
            await until(lines.saw(f"[{killed}] restarted (pid "))

        # Same addresses as before, and the same credentials: the tokens printed still work.
        assert await _health(stack.timeline_address) == health_pb2.HealthCheckResponse.SERVING
        assert await _graphql_status(stack) == 200
        assert _listening(store_port)
        after = {name: process.pid for name, process in stack.processes.items()}
        running = [name for name, p in stack.processes.items() if p.returncode is None]

    assert [line for line in lines.lines if re.match(r"\[\w+\] exited with code", line)] == [
        f"[{killed}] exited with code -9; restarting in 0.2 s (restart 1)" for killed in KILLED
    ]
    assert {n: after[n] == before[n] for n in before} == {n: n not in KILLED for n in before}
    assert sorted(running) == sorted(before)
    # Restarted or not, the stack stopped in order: the gateway, the services, then NATS;
    # the services gracefully.
    services = ("timeline", "ingest-chat")
    gateway_at, *services_at, nats_at = (
        _first(lines.lines, pattern)
        for pattern in (
            r"\[gateway\] .* gateway stopping$",
            *(rf"\[{name}\] .* {name} stopping$" for name in services),
            r'\[nats\] .*Trapped "terminated" signal',
        )
    )
    assert gateway_at < min(services_at)
    assert max(services_at) < nats_at
    assert {n: stack.processes[n].returncode for n in ("gateway", *services)} == dict.fromkeys(
        ("gateway", *services), 0
    )


@pytest.mark.parametrize(
    ("owner", "option"),
    [("nats", "--nats-port"), ("timeline", "--timeline-port"), ("gateway", "--gateway-port")],
)
async def test_a_port_taken_after_the_check_stops_everything_already_started(
    tmp_path: Path, taken_port: int, owner: str, option: str
) -> None:
    free = StackPorts.free()
    ports = {
        # NATS fails in milliseconds while the store beside it is still starting.
        "nats": replace(free, nats=taken_port),
        "timeline": replace(free, timeline=taken_port),
        "gateway": replace(free, gateway=taken_port),
    }
    stack = LocalStack(
        tmp_path,
        ports=ports[owner],
        channels=("chat",),
        sink=Lines(),
    )

    with pytest.raises(PortInUseError) as refused:
        await stack.open()

    assert str(refused.value) == (
        f"port {taken_port} ({owner}) is already in use on 127.0.0.1; choose another with {option}"
    )
    started = {name: p for name, p in stack.processes.items() if name != owner}
    assert {name: p.returncode is not None for name, p in started.items()} == dict.fromkeys(
        started, True
    )
    assert [name for name, p in started.items() if p.port and _listening(p.port)] == []
