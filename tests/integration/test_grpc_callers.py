"""Hostile callers against real ingest and timeline gRPC servers, real NATS and the real store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import grpc
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from tests import builders
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.test_ingest_to_timeline import wait_for_events
from tests.tls_certificates import CertificateAuthority, Issued
from tsunagu.bus.subjects import INTERACTIONS_STREAM
from tsunagu.grpc_callers import CallerCredential, issue_credential
from tsunagu.grpc_channels import open_channel
from tsunagu.grpc_tls import channel_credentials
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc, timeline_pb2, timeline_pb2_grpc
from tsunagu.v1 import interaction_pb2 as pb

Starter = Callable[..., AbstractAsyncContextManager[Any]]
Code = grpc.StatusCode
SPIFFE_CHAT = "spiffe://tsunagu/adapter/acme-chat"


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_server.url)
    yield nc.jetstream()
    await nc.close()


async def published(js: JetStreamContext, tenant: str, channel: str = "chat") -> str | None:
    """The event id last stored on the tenant's channel subject, or None if nothing was."""
    try:
        msg = await js.get_last_msg(INTERACTIONS_STREAM, f"interactions.{tenant}.{channel}")
    except NotFoundError:
        return None
    event_id: str = pb.Interaction.FromString(msg.data or b"").event_id
    return event_id


def submit(event: pb.Interaction) -> ingest_pb2.SubmitRequest:
    return ingest_pb2.SubmitRequest(interaction=event)


def batch(*events: pb.Interaction) -> ingest_pb2.SubmitBatchRequest:
    return ingest_pb2.SubmitBatchRequest(interactions=list(events))


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_anonymous_or_unknown_callers_are_unauthenticated_and_nothing_is_published(
    run_ingest: Starter, js: JetStreamContext, tenant: str, callers: CallerSet
) -> None:
    event = builders.chat(tenant)
    async with run_ingest("chat") as chat:
        for token in (None, "not-a-token-anyone-was-given"):
            async with open_channel(chat.server.address, token=token) as ch:
                stub = ingest_pb2_grpc.IngestServiceStub(ch)
                for call in (stub.Submit(submit(event)), stub.SubmitBatch(batch(event))):
                    error = await refused(call)
                    assert error.code() == Code.UNAUTHENTICATED
                    assert ("no credential" if token is None else "unknown") in (
                        error.details() or ""
                    )
        assert await published(js, tenant) is None
        # The same event from the chat adapter is stored: only the credential was missing.
        async with channel_for(chat.server.address, callers.adapter("chat")) as ch:
            await ingest_pb2_grpc.IngestServiceStub(ch).Submit(submit(event))
        assert await published(js, tenant) == event.event_id


def _adapter(name: str, tenant: str, channel: str = "chat") -> tuple[CallerCredential, str]:
    return issue_credential(name, kind="adapter", tenants=[tenant], channel=channel)


async def test_an_adapter_of_one_tenant_cannot_submit_for_another_and_the_other_still_can(
    run_ingest: Starter, js: JetStreamContext, tenant: str
) -> None:
    victim = f"{tenant}b"
    (ours, our_token), (theirs, their_token) = _adapter("a-chat", tenant), _adapter("b", victim)
    forged = builders.chat(victim, phone="090-1111-2222", text="forged")
    mine = builders.chat(tenant, text="a legitimate one")
    async with run_ingest("chat", callers=[ours, theirs]) as chat:
        async with channel_for(chat.server.address, our_token) as ch:
            stub = ingest_pb2_grpc.IngestServiceStub(ch)
            error = await refused(stub.Submit(submit(forged)))
            assert error.code() == Code.PERMISSION_DENIED
            # One foreign event refuses the whole batch: its own tenant's event too.
            error = await refused(stub.SubmitBatch(batch(mine, forged)))
            assert error.code() == Code.PERMISSION_DENIED
        assert await published(js, victim) is None
        assert await published(js, tenant) is None

        good = builders.chat(victim, text="theirs")
        async with channel_for(chat.server.address, their_token) as ch:
            answer = await ingest_pb2_grpc.IngestServiceStub(ch).SubmitBatch(batch(good))
        assert [r.status for r in answer.results] == [ingest_pb2.SubmitResult.STATUS_ACCEPTED]
        assert await published(js, victim) == good.event_id


async def test_a_single_tenant_adapter_may_leave_the_tenant_out(
    run_ingest: Starter, js: JetStreamContext, tenant: str
) -> None:
    credential, token = _adapter("one-tenant", tenant)
    event = builders.chat(tenant)
    event.tenant = ""
    async with (
        run_ingest("chat", callers=[credential]) as chat,
        channel_for(chat.server.address, token) as ch,
    ):
        await ingest_pb2_grpc.IngestServiceStub(ch).Submit(submit(event))
    assert await published(js, tenant) == event.event_id


async def test_a_chat_adapter_cannot_submit_to_the_voice_ingest(
    run_ingest: Starter, js: JetStreamContext, tenant: str, callers: CallerSet
) -> None:
    call = builders.call(tenant, from_number="090-3333-4444")
    async with (
        run_ingest("voice") as voice,
        channel_for(voice.server.address, callers.adapter("chat")) as ch,
    ):
        error = await refused(ingest_pb2_grpc.IngestServiceStub(ch).Submit(submit(call)))
    assert error.code() == Code.PERMISSION_DENIED
    assert "not voice" in (error.details() or "")
    assert await published(js, tenant, "voice") is None


def _timeline_reads(tenant: str, stub: timeline_pb2_grpc.TimelineServiceAsyncStub) -> list[Any]:
    return [
        stub.SearchCustomers(timeline_pb2.SearchCustomersRequest(tenant=tenant, query="+81")),
        stub.ListInteractions(
            timeline_pb2.ListInteractionsRequest(tenant=tenant, customer_id="cus_1")
        ),
    ]


async def test_the_timeline_api_refuses_adapters_anonymous_callers_and_foreign_tenants(
    run_timeline: Starter, run_ingest: Starter, tenant: str, callers: CallerSet
) -> None:
    tools, tools_token = issue_credential("tools", kind="service", tenants=[f"{tenant}x"])
    event = builders.chat(tenant, phone="090-5555-6666", name="Sato Hanako")
    async with (
        run_timeline(callers=[*callers.credentials, tools]) as timeline,
        run_ingest("chat") as chat,
        channel_for(chat.server.address, callers.adapter("chat")) as ingest_channel,
        channel_for(timeline.server.address, callers.service) as service_channel,
    ):
        await ingest_pb2_grpc.IngestServiceStub(ingest_channel).Submit(submit(event))
        service = timeline_pb2_grpc.TimelineServiceStub(service_channel)
        owners = await wait_for_events(service, tenant, [event.event_id])

        cases = [
            (callers.adapter("chat"), Code.PERMISSION_DENIED),
            (None, Code.UNAUTHENTICATED),
            (tools_token, Code.PERMISSION_DENIED),  # a service of another tenant
        ]
        for token, code in cases:
            async with open_channel(timeline.server.address, token=token) as ch:
                stub = timeline_pb2_grpc.TimelineServiceStub(ch)
                # Its own tenant, and any other.
                for call in [*_timeline_reads(tenant, stub), *_timeline_reads("acme", stub)]:
                    assert (await refused(call)).code() == code
                page = stub.ListInteractions(
                    timeline_pb2.ListInteractionsRequest(
                        tenant=tenant, customer_id=owners[event.event_id]
                    )
                )
                assert (await refused(page)).code() == code

        # The gateway's identity reads it: the data was there all along.
        found = await service.SearchCustomers(
            timeline_pb2.SearchCustomersRequest(tenant=tenant, query="Sato")
        )
        assert [c.id for c in found.customers] == [owners[event.event_id]]


async def _health(ch: grpc.aio.Channel) -> int:
    answer = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
    return int(answer.status)


async def _list_services(ch: grpc.aio.Channel, token: str = "") -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(ch)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    metadata = [("authorization", f"Bearer {token}")] if token else None
    async for answer in stub.ServerReflectionInfo(iter([request]), metadata=metadata):
        return [s.name for s in answer.list_services_response.service]
    return []


async def test_reflection_is_authenticated_and_off_when_configured_and_health_is_open(
    run_ingest: Starter, callers: CallerSet
) -> None:
    token = callers.adapter("chat")
    async with run_ingest("chat") as chat, open_channel(chat.server.address) as ch:
        assert "tsunagu.v1.IngestService" in await _list_services(ch, token)
        assert (await refused(_list_services(ch))).code() == Code.UNAUTHENTICATED
        assert await _health(ch) == health_pb2.HealthCheckResponse.SERVING
    async with (
        run_ingest("chat", reflection=False) as chat,
        open_channel(chat.server.address) as ch,
    ):
        assert (await refused(_list_services(ch, token))).code() == Code.UNIMPLEMENTED
        assert await _health(ch) == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture
def authority(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "ca")


def _mtls(authority: CertificateAuthority, **more: Any) -> dict[str, Any]:
    server = authority.issue("server", common_name="ingest-chat", server=True)
    return {
        "tls_cert_file": server.cert_file,
        "tls_key_file": server.key_file,
        "tls_client_ca_file": authority.ca_file,
        "health_port": 0,
        **more,
    }


async def test_mtls_admits_the_right_certificate_only(
    run_ingest: Starter,
    js: JetStreamContext,
    authority: CertificateAuthority,
    tmp_path: Path,
    tenant: str,
) -> None:
    adapter = CallerCredential(
        name="acme-chat",
        kind="adapter",
        tenants=[tenant],
        channel="chat",
        certificate_identity=SPIFFE_CHAT,
    )
    good = authority.issue("acme-chat", common_name="acme-chat", uris=(SPIFFE_CHAT,))
    unknown = authority.issue("other", common_name="someone-else")
    stranger = CertificateAuthority(tmp_path / "other-ca").issue(
        "stranger", common_name="acme-chat", uris=(SPIFFE_CHAT,)
    )
    event = builders.chat(tenant)
    settings = _mtls(authority, tls_require_client_cert=True)
    async with run_ingest("chat", callers=[adapter], **settings) as chat:
        address = chat.server.address

        def tls(client: Issued | None = None) -> grpc.ChannelCredentials:
            return channel_credentials(
                ca_file=authority.ca_file,
                cert_file=client.cert_file if client else None,
                key_file=client.key_file if client else None,
            )

        # No certificate, or one from another CA: the handshake fails, no call is served.
        for credentials in (tls(), tls(stranger)):
            async with open_channel(address, tls=credentials) as ch:
                error = await refused(ingest_pb2_grpc.IngestServiceStub(ch).Submit(submit(event)))
                assert error.code() == Code.UNAVAILABLE
        # A certificate of the right CA but no known identity.
        async with open_channel(address, tls=tls(unknown)) as ch:
            error = await refused(ingest_pb2_grpc.IngestServiceStub(ch).Submit(submit(event)))
            assert error.code() == Code.UNAUTHENTICATED
        assert await published(js, tenant) is None

        async with open_channel(address, tls=tls(good)) as ch:
            await ingest_pb2_grpc.IngestServiceStub(ch).Submit(submit(event))
        assert await published(js, tenant) == event.event_id

        # Probes: health on its own plaintext port, with neither TLS nor credentials.
        async with open_channel(f"127.0.0.1:{chat.server.health_port}") as ch:
            assert await _health(ch) == health_pb2.HealthCheckResponse.SERVING
        # The TLS port speaks no plaintext.
        async with open_channel(address, token="whatever") as ch:
            error = await refused(ingest_pb2_grpc.IngestServiceStub(ch).Submit(submit(event)))
            assert error.code() == Code.UNAVAILABLE


async def test_the_gateway_reads_the_timeline_over_mtls_with_its_service_token(
    run_timeline: Starter, authority: CertificateAuthority, tenant: str, callers: CallerSet
) -> None:
    from gateway.settings import GatewaySettings
    from gateway.timeline_client import TimelineClient

    client_cert = authority.issue(
        "gateway", common_name="gateway", uris=("spiffe://tsunagu/service/gateway",)
    )
    settings = GatewaySettings(
        timeline_tls_ca_file=authority.ca_file,
        timeline_tls_cert_file=client_cert.cert_file,
        timeline_tls_key_file=client_cert.key_file,
    )
    request = timeline_pb2.GetCustomersRequest(tenant=tenant, customer_ids=["cus_x"])
    # As in the production overlay: TLS, and a client certificate required.
    async with run_timeline(**_mtls(authority, tls_require_client_cert=True)) as timeline:
        address = timeline.server.address
        async with TimelineClient(
            address=address, timeout_seconds=30, token=callers.service, tls=settings.timeline_tls()
        ) as client:
            assert await client.get_customers(tenant, ["cus_unknown"]) == [None]
        # The certificate opens the connection; without a token or a known identity, no call.
        async with open_channel(address, tls=settings.timeline_tls(), token="forged") as ch:
            stub = timeline_pb2_grpc.TimelineServiceStub(ch)
            assert (await refused(stub.GetCustomers(request))).code() == Code.UNAUTHENTICATED
        # The token alone does not open a connection that requires a certificate.
        server_only = channel_credentials(ca_file=authority.ca_file)
        async with open_channel(address, tls=server_only, token=callers.service) as ch:
            stub = timeline_pb2_grpc.TimelineServiceStub(ch)
            assert (await refused(stub.GetCustomers(request))).code() == Code.UNAVAILABLE
