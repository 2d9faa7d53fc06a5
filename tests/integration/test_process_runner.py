"""Every service runs under tsunagu.runtime: ready line, SIGTERM → exit 0, a crash → exit 1."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from services.ingest.bootstrap import bootstrap
from services.ingest.settings import IngestSettings
from tests.action_keys import session_action_keys
from tsunagu.bus.connection import NatsConnection, NatsUnreachable, connect
from tsunagu.bus.subjects import INTERACTIONS_STREAM
from tsunagu.local.processes import ManagedProcess, NatsServer

REPO = Path(__file__).resolve().parents[2]
Environment = Callable[[NatsServer, str, str, str], dict[str, str]]


def _ingest(nats: NatsServer, _mongodb_uri: str, _database: str, _tenant: str) -> dict[str, str]:
    return {
        "TSUNAGU_INGEST_CHANNEL": "sms",
        "TSUNAGU_INGEST_PORT": "0",
        "TSUNAGU_INGEST_NATS_URL": nats.url,
    }


def _timeline(nats: NatsServer, mongodb_uri: str, database: str, tenant: str) -> dict[str, str]:
    return {
        "TSUNAGU_TIMELINE_PORT": "0",
        "TSUNAGU_TIMELINE_NATS_URL": nats.url,
        "TSUNAGU_TIMELINE_MONGODB_URI": mongodb_uri,
        "TSUNAGU_TIMELINE_MONGODB_DATABASE": database,
        "TSUNAGU_TIMELINE_CONSUMER_NAME": f"runner-{tenant}",
        "TSUNAGU_TIMELINE_SUBJECT_FILTER": f"interactions.{tenant}.>",
        **session_action_keys().timeline_env(),
    }


def _gateway(nats: NatsServer, _mongodb_uri: str, _database: str, _tenant: str) -> dict[str, str]:
    # Nothing needs to listen at the timeline address: the gateway starts without it.
    return {
        "TSUNAGU_GATEWAY_PORT": "0",
        # Start-up and shutdown are under test here, not authentication (loopback only).
        "TSUNAGU_GATEWAY_AUTH_MODE": "development",
        "TSUNAGU_GATEWAY_TIMELINE_ADDRESS": "127.0.0.1:9",
        "TSUNAGU_GATEWAY_NATS_URL": nats.url,
        **session_action_keys().gateway_env(),
    }


SERVICES: dict[str, tuple[str, str, Environment]] = {
    "ingest": ("services.ingest", r"ingest-sms ready on 127\.0\.0\.1:\d+", _ingest),
    "timeline": ("services.timeline", r"timeline ready on 127\.0\.0\.1:\d+", _timeline),
    "gateway": ("gateway", r"gateway listening on http://127\.0\.0\.1:\d+/graphql", _gateway),
}


def _environment(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    return {**env, **variables}


# (service, lines, **extra environment variables) -> the process, not started.
ServiceProcess = Callable[..., ManagedProcess]
# What every JSON log line has (tsunagu.logs.JsonLineFormatter).
JSON_LOG_FIELDS = {"timestamp", "level", "logger", "message", "service", "pid"}


@pytest.fixture
def service_process(
    nats_server: NatsServer, mongodb_uri: str, database_name: str, tenant: str
) -> ServiceProcess:
    """`python -m` of a service against this test's NATS, store and tenant; output to `lines`."""

    def build(service: str, lines: list[str], **variables: str) -> ManagedProcess:
        module, ready, environment = SERVICES[service]
        return ManagedProcess(
            service,
            [sys.executable, "-m", module],
            ready_pattern=ready,
            env=_environment(
                **environment(nats_server, mongodb_uri, database_name, tenant), **variables
            ),
            cwd=REPO,
            sink=lambda _name, line: lines.append(line),
            start_timeout=60,
            stop_timeout=30,
        )

    return build


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_sigterm_stops_a_service_gracefully_with_exit_0(
    service: str, service_process: ServiceProcess
) -> None:
    lines: list[str] = []
    process = service_process(service, lines)
    async with process:
        served = process.returncode is None
    output = "\n".join(lines)
    assert served, output
    assert process.returncode == 0, output
    assert f"{service if service != 'ingest' else 'ingest-sms'} stopping" in output
    assert "Traceback" not in output
    # Before the ready line: where Prometheus scrapes it (a free port, as METRICS_PORT is 0).
    assert re.match(r"metrics on http://127\.0\.0\.1:\d+/metrics$", lines[0]), output


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_with_json_logs_a_service_writes_every_log_record_as_one_json_line(
    service: str, service_process: ServiceProcess
) -> None:
    lines: list[str] = []
    process = service_process(service, lines, TSUNAGU_LOG_FORMAT="json")
    async with process:
        pid = process.pid
    name = "ingest-sms" if service == "ingest" else service
    # The metrics and ready lines are for supervisors, on stdout; all the rest is the log.
    ready = re.compile(SERVICES[service][1])
    records = [
        json.loads(line)
        for line in lines
        if not ready.search(line) and not line.startswith("metrics on ")
    ]
    for record in records:
        assert record.keys() >= JSON_LOG_FIELDS, record
        assert record["service"] == f"tsunagu-{name}"
        assert record["pid"] == pid
        assert datetime.fromisoformat(record["timestamp"]).tzname() == "UTC"
    said = {(record["level"], record["logger"], record["message"]) for record in records}
    assert ("INFO", "tsunagu.runtime", f"{name} stopping") in said


def test_an_unknown_log_format_stops_a_process_with_exit_2_naming_the_setting() -> None:
    done = _run_crashing(TSUNAGU_LOG_FORMAT="yaml")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("invalid settings (LogSettings):\n  format:"), done.stderr


def test_a_metrics_port_in_use_stops_a_service_with_exit_1_naming_port_and_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "services.ingest"],
            cwd=REPO,
            env=_environment(TSUNAGU_INGEST_CHANNEL="sms", TSUNAGU_INGEST_METRICS_PORT=str(port)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    said = f"cannot serve metrics on 127.0.0.1:{port} (change TSUNAGU_INGEST_METRICS_PORT)"
    assert said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def _run_crashing(**variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.integration.crashing_process"],
        cwd=REPO,
        env=_environment(**variables),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_crashed_task_stops_the_process_through_the_graceful_path_with_exit_1() -> None:
    done = _run_crashing(TEST_CRASH="+81 90 1234 5678")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("crashing ready on nowhere"), done.stdout
    assert "a task crashed (RuntimeError" in done.stderr
    # Where it failed, not what it said: a message may quote personal data.
    assert "crashing_process.py" in done.stderr
    assert "+81 90 1234 5678" not in done.stderr
    assert "closed gracefully" in done.stderr


async def test_the_timeline_exits_1_through_the_graceful_path_when_its_consumer_dies(
    service_process: ServiceProcess, nats_server: NatsServer, tenant: str
) -> None:
    lines: list[str] = []
    process = service_process("timeline", lines)
    async with process:
        nc = await connect(nats_server.url, name="test")
        try:
            # Its durable consumer vanishes under it: the pump's next fetch fails for good.
            await nc.jetstream().delete_consumer(INTERACTIONS_STREAM, f"runner-{tenant}")
        finally:
            await nc.drain()
        returncode = await asyncio.wait_for(process.wait(), 60)
    output = "\n".join(lines)
    assert returncode == 1, output
    assert "timeline: a task crashed" in output
    # The graceful path ran: the gRPC server and NATS were closed, not abandoned.
    assert "nats: disconnected" in output


async def test_a_service_that_cannot_reach_nats_fails_within_the_budget_naming_it() -> None:
    # Nothing listens on the discard port: nats-py alone would retry this first connection
    # forever behind a process that never becomes ready.
    url = "nats://127.0.0.1:9"
    bus = NatsConnection(url, name="test", connect_budget_seconds=1)
    service = bootstrap(IngestSettings(channel="chat", port=0, nats_url=url), bus=bus)
    with pytest.raises(NatsUnreachable, match=r"cannot connect to NATS at nats://127\.0\.0\.1:9"):
        await asyncio.wait_for(service.open(), 30)
    assert bus.client.is_closed
