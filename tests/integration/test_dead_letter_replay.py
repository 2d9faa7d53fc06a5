"""Dead letters can be listed and replayed once their cause is fixed; bad CLI input is refused."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import nats

from services.timeline.profiles.profile import customer_id_for
from tests import builders
from tests.action_keys import session_action_keys
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.test_ingest_to_timeline import wait_for_events
from tsunagu.bus.subjects import interaction_subject
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc, timeline_pb2_grpc
from tsunagu.v1 import interaction_pb2 as pb

Starter = Callable[..., AbstractAsyncContextManager[Any]]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.timeline.deadletters", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_note_for_a_customer_not_yet_known_is_replayed_after_the_customer_arrives(
    nats_server: NatsServer,
    run_timeline: Starter,
    run_ingest: Starter,
    tenant: str,
    callers: CallerSet,
) -> None:
    chat = builders.chat(tenant, visitor="late-visitor")
    customer_id = customer_id_for(tenant, chat.event_id)  # the id the chat will create
    note = pb.Interaction(
        event_id="6c1d3f5e-0000-4000-8000-00000000abcd",
        tenant=tenant,
        channel=pb.CHANNEL_AGENT_DESK,
        kind=pb.KIND_NOTE,
        direction=pb.DIRECTION_INTERNAL,
        agent_action=pb.AgentActionDetail(customer_id=customer_id, note=pb.NoteAction(text="vip")),
    )
    note.occurred_at.FromDatetime(datetime.now(UTC))
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    async with run_timeline() as timeline, run_ingest("chat") as ingest:
        await js.publish(
            interaction_subject(tenant, pb.CHANNEL_AGENT_DESK),
            note.SerializeToString(),
            # Signed as the gateway does: the replay must carry the signature along.
            headers=session_action_keys().headers(note),
        )
        listing = await asyncio.to_thread(
            cli, "list", "--nats-url", nats_server.url, "--tenant", tenant
        )
        deadline = asyncio.get_running_loop().time() + 20
        while "1 dead letters" not in listing.stdout:
            assert asyncio.get_running_loop().time() < deadline, listing.stdout
            await asyncio.sleep(0.1)
            listing = await asyncio.to_thread(
                cli, "list", "--nats-url", nats_server.url, "--tenant", tenant
            )
        assert customer_id in listing.stdout  # the error names the unknown customer

        async with channel_for(ingest.server.address, callers.adapter("chat")) as ch:
            await ingest_pb2_grpc.IngestServiceStub(ch).Submit(
                ingest_pb2.SubmitRequest(interaction=chat)
            )
        async with channel_for(timeline.server.address, callers.service) as ch:
            stub = timeline_pb2_grpc.TimelineServiceStub(ch)
            await wait_for_events(stub, tenant, [chat.event_id])
            replayed = await asyncio.to_thread(
                cli, "replay", "--nats-url", nats_server.url, "--tenant", tenant
            )
            assert replayed.returncode == 0, replayed.stderr
            assert "1 replayed" in replayed.stdout
            owners = await wait_for_events(stub, tenant, [note.event_id])
        assert owners[note.event_id] == customer_id
    after = await asyncio.to_thread(cli, "list", "--nats-url", nats_server.url, "--tenant", tenant)
    assert "0 dead letters" in after.stdout
    await nc.close()


def test_the_cli_refuses_bad_arguments_clearly() -> None:
    for args in (["explode"], ["list", "--tenant", "A.B"], ["replay", "--limit", "0"]):
        done = cli(*args)
        assert done.returncode == 2, done
        assert "usage:" in done.stderr
        assert "Traceback" not in done.stderr
