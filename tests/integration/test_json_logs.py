"""A service started with TSUNAGU_LOG_FORMAT=json writes its whole log as JSON lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from tsunagu.local.processes import ManagedProcess, NatsServer

REPO = Path(__file__).resolve().parents[2]
READY_LINE = "gateway listening on "
FIELDS = {"timestamp", "level", "logger", "message", "service", "pid"}


async def test_the_gateway_logs_json_lines_with_the_indexed_fields(nats_server: NatsServer) -> None:
    output: list[str] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TSUNAGU_", "OTEL_"))}
    gateway = ManagedProcess(
        "gateway",
        [sys.executable, "-m", "gateway"],
        ready_pattern=READY_LINE,
        env={
            **env,
            "TSUNAGU_LOG_FORMAT": "json",
            "TSUNAGU_GATEWAY_PORT": "0",
            "TSUNAGU_GATEWAY_AUTH_MODE": "development",
            "TSUNAGU_GATEWAY_TIMELINE_ADDRESS": "127.0.0.1:9",
            "TSUNAGU_GATEWAY_NATS_URL": nats_server.url,
        },
        inherit_environment=False,
        cwd=REPO,
        sink=lambda _name, line: output.append(line),
    )
    async with gateway:
        pid = gateway.pid
    assert gateway.returncode in {0, -15}, "\n".join(output)

    # stdout's ready line is for supervisors; everything else is the log (stderr).
    logged = [line for line in output if not line.startswith(READY_LINE)]
    records = [json.loads(line) for line in logged]
    for record in records:
        assert record.keys() >= FIELDS, record
        assert record["service"] == "tsunagu-gateway"
        assert record["pid"] == pid
        assert datetime.fromisoformat(record["timestamp"]).tzname() == "UTC"
    said = {(record["level"], record["logger"], record["message"]) for record in records}
    # Its own lines, uvicorn's and the runner's, from start to the graceful stop.
    assert ("INFO", "gateway.app", "timeline client closed") in said
    assert ("INFO", "uvicorn.error", "Application startup complete.") in said
    assert ("INFO", "tsunagu.runtime", "gateway stopping") in said
    assert any(level == "WARNING" and "development authentication" in m for level, _, m in said)


def test_an_unknown_log_format_is_refused_naming_the_setting() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    refused = subprocess.run(
        [sys.executable, "-m", "services.ingest"],
        cwd=REPO,
        env={**env, "TSUNAGU_LOG_FORMAT": "yaml", "TSUNAGU_INGEST_CHANNEL": "chat"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("invalid settings (LogSettings):\n  format:"), refused.stderr
