"""The local issuer: its key kept across runs, tokens the gateway accepts, the credentials file."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from gateway.auth import Principal
from gateway.authenticators import build_authenticator
from gateway.settings import GatewaySettings
from tests.identity_provider import principal_of
from tests.unit.test_gateway_http import REPO_ROOT
from tsunagu.local.credentials import CREDENTIALS_FILE, write_section
from tsunagu.local.issuer import AUDIENCE, ISSUER, JwksServer, LocalIssuer


def test_the_signing_key_is_kept_across_runs_and_private(tmp_path: Path) -> None:
    first = LocalIssuer.load_or_create(tmp_path)
    second = LocalIssuer.load_or_create(tmp_path)

    assert first.kid == second.kid
    [key_file] = tmp_path.iterdir()
    assert key_file.stat().st_mode & 0o077 == 0


def test_credentials_sections_are_merged_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / CREDENTIALS_FILE).write_text(json.dumps({"adapters": {"chat": "secret"}}))

    path = write_section(tmp_path, "graphql", {"agent": "Bearer a"})
    write_section(tmp_path, "graphql", {"agent": "Bearer b"})

    assert json.loads(path.read_text()) == {
        "adapters": {"chat": "secret"},
        "graphql": {"agent": "Bearer b"},
    }
    assert path.stat().st_mode & 0o077 == 0


async def test_python_m_tsunagu_local_token_mints_a_token_the_gateway_accepts(
    tmp_path: Path,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tsunagu.local",
        "token",
        "--data-dir",
        str(tmp_path),
        "--tenant",
        "acme",
        "--roles",
        "agent,supervisor",
        "--ttl",
        "600",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    issuer = LocalIssuer.load_or_create(tmp_path)

    async with JwksServer(lambda: [issuer.jwk()]) as jwks:
        authenticator = build_authenticator(
            GatewaySettings.model_construct(
                jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_url=jwks.url
            )
        )
        principal = await principal_of(authenticator, stdout.decode().strip())

    assert principal == Principal(
        subject="local-agent-supervisor",
        tenant="acme",
        roles=frozenset({"agent", "supervisor"}),
        display_name="local-agent-supervisor",
    )
