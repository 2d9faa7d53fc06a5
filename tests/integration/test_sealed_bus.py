"""Ingestion seals every event for the bus: JetStream's files hold no personal plaintext."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import nats
import pytest

from tests import builders
from tests.byte_search import hits, wait_until_on_disk
from tests.grpc_credentials import CallerSet
from tests.integration.sealed_services import sealed_services
from tests.integration.test_ingest_to_timeline import submit, wait_for_events
from tsunagu.bus import headers
from tsunagu.crypto import LocalKeyFile
from tsunagu.crypto.bus_seal import BusSealer
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import ingest_pb2, timeline_pb2

Starter = Callable[..., AbstractAsyncContextManager[Any]]
Result = ingest_pb2.SubmitResult


def _secrets() -> dict[str, str]:
    """A customer's unique phone, e-mail and sentence, found nowhere else on the machine."""
    tag = uuid.uuid4().hex[:8]
    return {
        "phone": builders.unique_mobile(),
        "email": f"hanako.{tag}@example.jp",
        "sentence": f"My neighbour's parrot {tag} ate the warranty card",
    }


@pytest.fixture
async def sealed(
    run_timeline: Starter, run_ingest: Starter, callers: CallerSet, tmp_path: Path
) -> AsyncIterator[dict[str, Any]]:
    key_file = tmp_path / "keys.json"
    async with sealed_services(
        run_timeline=run_timeline, run_ingest=run_ingest, callers=callers, key_file=key_file
    ) as services:
        yield {
            "key_file": key_file,
            "chat": services.ingest["chat"],
            "timeline": services.timeline,
        }


async def test_the_stream_files_hold_no_plaintext_and_the_timeline_reads_the_event(
    sealed: dict[str, Any], tenant: str, nats_server: NatsServer, session_dir: Path
) -> None:
    secret = _secrets()
    event = builders.chat(
        tenant, text=secret["sentence"], phone=secret["phone"], email=secret["email"]
    )

    result = await submit(sealed["chat"], event)
    assert result.status == Result.STATUS_ACCEPTED
    await wait_for_events(sealed["timeline"], tenant, [event.event_id])

    # The timeline opened it: the stored entry carries the words.
    stored = await sealed["timeline"].GetInteractions(
        timeline_pb2.GetInteractionsRequest(tenant=tenant, event_ids=[event.event_id])
    )
    assert stored.entries[0].interaction.content.text == secret["sentence"]
    # On the stream it is an envelope with its wrapped key beside it.
    nc = await nats.connect(nats_server.url)
    try:
        on_stream = await nc.jetstream().get_msg("INTERACTIONS", result.stream_sequence)
        canary = builders.chat(tenant, text=f"plaintext canary {uuid.uuid4().hex}")
        await nc.jetstream().publish(
            f"interactions.{tenant}.chat", canary.SerializeToString(), stream="INTERACTIONS"
        )
    finally:
        await nc.close()
    assert headers.SEALED_KEY in (on_stream.headers or {})
    assert secret["sentence"].encode() not in (on_stream.data or b"")

    await wait_until_on_disk(session_dir / "nats", canary.content.text)
    assert hits(session_dir / "nats", secret.values()) == {}


async def _published_raw(
    nats_server: NatsServer, subject: str, data: bytes, extra: dict[str, str]
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        await nc.jetstream().publish(subject, data, stream="INTERACTIONS", headers=extra)
    finally:
        await nc.close()


def _sealed_for(key_file: Path, tenant: str, text: str) -> tuple[str, bytes, dict[str, str]]:
    event = builders.chat(tenant, text=text)
    data, extra = BusSealer(LocalKeyFile(key_file)).seal(
        tenant=tenant, event_id=event.event_id, data=event.SerializeToString()
    )
    return event.event_id, data, extra


async def _dead_letter_reasons(nats_server: NatsServer, tenant: str, count: int) -> list[str]:
    nc = await nats.connect(nats_server.url)
    try:
        sub = await nc.jetstream().subscribe(
            f"dlq.interactions.{tenant}.>", stream="INTERACTIONS_DLQ", ordered_consumer=True
        )
        reasons = []
        for _ in range(count):
            msg = await sub.next_msg(timeout=30)
            reasons.append((msg.headers or {}).get(headers.DEAD_LETTER_REASON, ""))
        return reasons
    finally:
        await nc.close()


async def test_sealed_bodies_that_do_not_open_are_dead_lettered_and_good_ones_recorded(
    sealed: dict[str, Any], tenant: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    subject = f"interactions.{tenant}.chat"
    # Under another deployment's keys; moved to another tenant; tampered; a junk key header.
    _, foreign, foreign_key = _sealed_for(tmp_path / "other-keys.json", tenant, "foreign")
    _, moved, moved_key = _sealed_for(sealed["key_file"], f"{tenant}x", "moved")
    _, tampered, tampered_key = _sealed_for(sealed["key_file"], tenant, "tampered")
    tampered = tampered[:-1] + bytes([tampered[-1] ^ 1])
    good_id, good, good_key = _sealed_for(sealed["key_file"], tenant, "good")
    junk_key = {headers.SEALED_KEY: base64.b64encode(b"not a key").decode()}
    for data, extra in [
        (foreign, foreign_key),
        (moved, moved_key),
        (tampered, tampered_key),
        (good, junk_key),
        (b"\x00not base64 either", {headers.SEALED_KEY: "%%%"}),
        (good, good_key),
    ]:
        await _published_raw(nats_server, subject, data, extra)

    await wait_for_events(sealed["timeline"], tenant, [good_id])
    assert await _dead_letter_reasons(nats_server, tenant, 5) == ["malformed"] * 5
