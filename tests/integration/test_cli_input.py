"""The command-line entry points, run as real processes, with bad configuration and arguments.

A misconfigured process must stop at once with a non-zero status and a message that names
what is wrong, before it connects to anything.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tsunagu.local.processes import ManagedProcess, NatsServer, ProcessFailedError

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0
# Far more than a configuration error needs, far less than giving up on a server.
QUICKLY = 10.0


@dataclass(frozen=True)
class Outcome:
    returncode: int
    output: str
    seconds: float


def clean_environment(**variables: str) -> dict[str, str]:
    """This environment without any TSUNAGU_* setting, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env.update(variables)
    return env


def run(*args: str, **variables: str) -> Outcome:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=clean_environment(**variables),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return Outcome(done.returncode, done.stdout + done.stderr, time.monotonic() - started)


def assert_refused_naming(outcome: Outcome, field: str) -> None:
    assert outcome.returncode == 2, outcome.output
    assert outcome.seconds < QUICKLY, outcome.output
    assert outcome.output.startswith("invalid settings"), outcome.output
    assert "Traceback" not in outcome.output
    # Each offending setting is named at the start of a line of its own.
    assert re.search(rf"^\s*{re.escape(field)}:", outcome.output, re.MULTILINE), outcome.output
    assert " ready on " not in outcome.output


def test_ingest_without_a_channel_exits_naming_channel() -> None:
    outcome = run("-m", "services.ingest")
    assert_refused_naming(outcome, "channel")
    assert "Field required" in outcome.output


def test_ingest_with_an_unknown_channel_exits_naming_channel_and_the_choices() -> None:
    outcome = run("-m", "services.ingest", TSUNAGU_INGEST_CHANNEL="fax")
    assert_refused_naming(outcome, "channel")
    assert "'fax'" in outcome.output
    assert all(f"'{c}'" in outcome.output for c in ("chat", "voice", "email", "sms", "web"))


@pytest.mark.parametrize("port", ["99999", "-1", "http", "50051; rm -rf /"])
def test_ingest_with_an_impossible_port_exits_naming_port(port: str) -> None:
    outcome = run("-m", "services.ingest", TSUNAGU_INGEST_CHANNEL="chat", TSUNAGU_INGEST_PORT=port)
    assert_refused_naming(outcome, "port")


@pytest.mark.parametrize("port", ["99999", "http"])
def test_gateway_with_an_impossible_port_exits_naming_port(port: str) -> None:
    outcome = run("-m", "gateway", TSUNAGU_GATEWAY_PORT=port)
    assert_refused_naming(outcome, "port")
    assert "listening on" not in outcome.output


def test_timeline_with_a_region_that_is_not_a_code_exits_naming_default_region() -> None:
    outcome = run("-m", "services.timeline", TSUNAGU_TIMELINE_DEFAULT_REGION="japan")
    assert_refused_naming(outcome, "default_region")
    assert "'japan'" in outcome.output


def test_timeline_with_unparsable_tenant_regions_exits_naming_tenant_regions() -> None:
    outcome = run("-m", "services.timeline", TSUNAGU_TIMELINE_TENANT_REGIONS="{not json")
    assert outcome.returncode == 2, outcome.output
    assert outcome.seconds < QUICKLY, outcome.output
    assert "Traceback" not in outcome.output
    assert 'field "tenant_regions"' in outcome.output


def test_timeline_with_a_subject_filter_outside_interactions_exits_naming_it() -> None:
    outcome = run("-m", "services.timeline", TSUNAGU_TIMELINE_SUBJECT_FILTER="dlq.>")
    assert_refused_naming(outcome, "subject_filter")


def test_local_stack_without_a_subcommand_exits_2_with_usage() -> None:
    outcome = run("-m", "tsunagu.local")
    assert outcome.returncode == 2, outcome.output
    assert outcome.output.startswith("usage: python -m tsunagu.local")
    assert "the following arguments are required: command" in outcome.output
    assert "Traceback" not in outcome.output


def test_local_stack_with_a_non_numeric_port_exits_2_with_usage() -> None:
    outcome = run("-m", "tsunagu.local", "run", "--gateway-port", "notanumber")
    assert outcome.returncode == 2, outcome.output
    assert outcome.output.startswith("usage: python -m tsunagu.local run")
    assert "argument --gateway-port: invalid int value: 'notanumber'" in outcome.output
    assert "Traceback" not in outcome.output


def test_local_stack_with_an_unknown_subcommand_exits_2_with_usage() -> None:
    outcome = run("-m", "tsunagu.local", "deploy-to-prod")
    assert outcome.returncode == 2, outcome.output
    assert "invalid choice: 'deploy-to-prod'" in outcome.output


async def test_ingest_with_an_unknown_phone_region_exits_naming_the_region(
    nats_server: NatsServer,
) -> None:
    # The region is checked once NATS is reached, so NATS is real and reachable here.
    outcome = await asyncio.to_thread(
        run,
        "-m",
        "services.ingest",
        TSUNAGU_INGEST_CHANNEL="chat",
        TSUNAGU_INGEST_DEFAULT_REGION="XX",
        TSUNAGU_INGEST_PORT="0",
        TSUNAGU_INGEST_NATS_URL=nats_server.url,
    )
    assert_refused_naming(outcome, "default_region")
    assert "'XX' is not a phone region code" in outcome.output


async def test_timeline_with_an_unknown_phone_region_refuses_to_start(
    nats_server: NatsServer, mongodb_uri: str, database_name: str, tenant: str
) -> None:
    # Everything else is valid and reachable, so only the region can stop it.
    env = clean_environment(
        TSUNAGU_TIMELINE_DEFAULT_REGION="XX",
        TSUNAGU_TIMELINE_PORT="0",
        TSUNAGU_TIMELINE_NATS_URL=nats_server.url,
        TSUNAGU_TIMELINE_MONGODB_URI=mongodb_uri,
        TSUNAGU_TIMELINE_MONGODB_DATABASE=database_name,
        TSUNAGU_TIMELINE_CONSUMER_NAME=f"cli-{tenant}",
        TSUNAGU_TIMELINE_SUBJECT_FILTER=f"interactions.{tenant}.>",
        TSUNAGU_TIMELINE_SHUTDOWN_GRACE_SECONDS="1",
    )
    process = ManagedProcess(
        "timeline",
        [sys.executable, "-m", "services.timeline"],
        ready_pattern=r"timeline ready on ",
        env=env,
        inherit_environment=False,
        cwd=REPO,
        sink=lambda _name, _line: None,
        start_timeout=QUICKLY,
    )
    # Readiness, or exiting first, is detected from its output; it is stopped either way.
    with pytest.raises(ProcessFailedError) as refused:
        await process.start()
    output = str(refused.value)
    assert output.startswith("timeline exited"), f"the timeline with default_region=XX:\n{output}"
    assert process.returncode is not None
    assert process.returncode > 0
    assert "region" in output
