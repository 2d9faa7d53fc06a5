"""NATS over TLS, as the production overlay configures it, against a real nats-server.

The server is configured from `tsunagu.bus.server_config.ServerTls` (the block the overlay
carries) with certificates of a throwaway CA; clients connect through
`tsunagu.bus.connection.NatsConnection`, as every service does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.msg import Msg

from services.ingest.bootstrap import bootstrap
from services.ingest.settings import IngestSettings
from tests.tls_certificates import CertificateAuthority
from tsunagu.bus.connection import NatsConnection, NatsTls, NatsUnreachable
from tsunagu.bus.permissions import OPERATOR, PROVISION, ingest_user
from tsunagu.bus.provision import ProvisionSettings, provision
from tsunagu.bus.server_config import LocalNatsUsers, ServerTls
from tsunagu.local.processes import NatsServer

# Refusals are waited for this long; a working connection gets the default budget.
REFUSAL_BUDGET_SECONDS = 3.0


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("nats-ca"))


@contextlib.asynccontextmanager
async def tls_server(
    folder: Path, authority: CertificateAuthority, *, verify_clients: bool = False
) -> AsyncIterator[NatsServer]:
    issued = authority.server()
    tls = ServerTls(
        cert_file=str(issued.cert_file),
        key_file=str(issued.key_file),
        ca_file=str(authority.ca_file) if verify_clients else None,
    )
    users = LocalNatsUsers(folder / "users")
    async with NatsServer(folder / "nats", users=users, tls=tls) as server:
        yield server


@pytest.fixture(scope="module")
async def server(
    tmp_path_factory: pytest.TempPathFactory, authority: CertificateAuthority
) -> AsyncIterator[NatsServer]:
    async with tls_server(tmp_path_factory.mktemp("nats-tls"), authority) as running:
        yield running


def _connection(server: NatsServer, tls: NatsTls | None, *, budget: float = 10.0) -> NatsConnection:
    assert server.users is not None
    return NatsConnection(
        server.address,
        name="tls-test",
        login=server.users.login(OPERATOR),
        tls=tls,
        connect_budget_seconds=budget,
    )


def _service_nats(
    server: NatsServer, user: str, authority: CertificateAuthority | None = None
) -> dict[str, Any]:
    """A service's NATS settings: its own user, and the CA when given (else the environment)."""
    assert server.users is not None
    login = server.users.login(user)
    settings: dict[str, Any] = {
        "nats_url": server.address,
        "nats_user": login.user,
        "nats_password": login.password,
    }
    if authority is not None:
        settings["nats_tls_ca_file"] = authority.ca_file
    return settings


async def test_a_client_trusting_the_ca_connects_and_messages_flow(
    server: NatsServer, authority: CertificateAuthority
) -> None:
    async with _connection(server, NatsTls(ca_file=authority.ca_file)) as connection:
        client = connection.client
        received: asyncio.Queue[bytes] = asyncio.Queue()

        async def heard(msg: Msg) -> None:
            await received.put(msg.data)

        await client.subscribe("tls.check", cb=heard)
        await client.flush()
        await client.publish("tls.check", b"over tls")

        assert await asyncio.wait_for(received.get(), 10) == b"over tls"
        assert client.is_connected


async def test_a_plaintext_client_is_refused(server: NatsServer) -> None:
    with pytest.raises(NatsUnreachable):
        async with _connection(server, None, budget=REFUSAL_BUDGET_SECONDS):
            pass


async def test_plaintext_bytes_get_no_answer_at_all(server: NatsServer) -> None:
    """The server starts with TLS: a client in the clear never even sees INFO."""
    assert server.users is not None
    login = server.users.login(OPERATOR)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            f'CONNECT {{"user":"{login.user}","pass":"{login.password}"}}\r\nPING\r\n'.encode()
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)  # until the server closes
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    assert b"INFO" not in answer
    assert b"PONG" not in answer


async def test_a_client_that_does_not_trust_the_servers_ca_is_refused(
    server: NatsServer, tmp_path: Path
) -> None:
    stranger = CertificateAuthority(tmp_path / "other-ca", name="Another CA")
    with pytest.raises(NatsUnreachable):
        async with _connection(
            server, NatsTls(ca_file=stranger.ca_file), budget=REFUSAL_BUDGET_SECONDS
        ):
            pass


async def test_a_server_verifying_clients_wants_a_certificate_from_its_ca(
    tmp_path: Path, authority: CertificateAuthority
) -> None:
    async with tls_server(tmp_path, authority, verify_clients=True) as verifying:
        with pytest.raises(NatsUnreachable):
            async with _connection(
                verifying, NatsTls(ca_file=authority.ca_file), budget=REFUSAL_BUDGET_SECONDS
            ):
                pass
        client = authority.client("timeline")
        tls = NatsTls(
            ca_file=authority.ca_file, cert_file=client.cert_file, key_file=client.key_file
        )
        async with _connection(verifying, tls) as connection:
            await connection.client.flush()
            assert connection.client.is_connected


async def test_services_reach_a_tls_nats_through_their_settings(
    server: NatsServer, authority: CertificateAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Provisioning and an ingestion service, told only `TSUNAGU_NATS_TLS_CA_FILE`."""
    monkeypatch.setenv("TSUNAGU_NATS_TLS_CA_FILE", str(authority.ca_file))

    summary = await provision(ProvisionSettings(**_service_nats(server, PROVISION)))
    assert "INTERACTIONS" in summary
    settings = IngestSettings(
        channel="chat", host="127.0.0.1", port=0, **_service_nats(server, ingest_user("chat"))
    )
    async with bootstrap(settings) as service:
        # Ready means connected, and the streams were found over the TLS connection.
        assert service.server.address


async def test_the_dead_letter_tool_reaches_a_tls_nats(
    server: NatsServer, authority: CertificateAuthority
) -> None:
    assert server.users is not None
    await provision(ProvisionSettings(**_service_nats(server, PROVISION, authority)))
    operator = server.users.login(OPERATOR)
    environment = {
        **os.environ,
        "TSUNAGU_NATS_PASSWORD": operator.password,
        "TSUNAGU_NATS_TLS_CA_FILE": str(authority.ca_file),
    }
    command = [sys.executable, "-m", "services.timeline.deadletters", "list"]
    listed = await asyncio.to_thread(
        subprocess.run,
        [*command, "--nats-url", server.address, "--nats-user", operator.user],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert listed.returncode == 0, listed.stderr
    assert "dead letters" in listed.stdout
