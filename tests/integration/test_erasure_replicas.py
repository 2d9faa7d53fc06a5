"""Erasure across timeline replicas: once EraseCustomer returns on one, no replica opens the
person's data, even one that had just read it (and so held the key in memory).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from tests import builders
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.sealed_services import sealed_services
from tests.integration.test_ingest_to_timeline import submit, wait_for_events
from tsunagu.v1 import erasure_pb2, ingest_pb2, timeline_pb2, timeline_pb2_grpc

Starter = Callable[..., AbstractAsyncContextManager[Any]]
OFFICER = erasure_pb2.ErasureActor(subject="po-1", display_name="Privacy Officer")


async def _texts(
    timeline: timeline_pb2_grpc.TimelineServiceAsyncStub, tenant: str, customer_id: str
) -> set[str]:
    page = await timeline.ListInteractions(
        timeline_pb2.ListInteractionsRequest(tenant=tenant, customer_id=customer_id, page_size=10)
    )
    return {entry.interaction.content.text for entry in page.entries}


async def _by_id(
    timeline: timeline_pb2_grpc.TimelineServiceAsyncStub, tenant: str, event_id: str
) -> list[str]:
    found = await timeline.GetInteractions(
        timeline_pb2.GetInteractionsRequest(tenant=tenant, event_ids=[event_id])
    )
    return [entry.interaction.content.text for entry in found.entries]


async def test_a_replica_that_just_read_a_person_shows_only_the_mask_once_erasure_returns(
    run_timeline: Starter,
    run_ingest: Starter,
    callers: CallerSet,
    tenant: str,
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "keys.json"
    sentence = f"The lighthouse {uuid.uuid4().hex[:8]} blinks in Morse for my cat"
    async with (
        sealed_services(
            run_timeline=run_timeline, run_ingest=run_ingest, callers=callers, key_file=key_file
        ) as first,
        run_timeline(key_file=key_file) as second_replica,
    ):
        channel = channel_for(second_replica.server.address, callers.service)
        second = timeline_pb2_grpc.TimelineServiceStub(channel)
        try:
            chat = builders.chat(
                tenant, text=sentence, phone=builders.unique_mobile(), name="Yamada Yuki"
            )
            result = await submit(first.ingest["chat"], chat)
            assert result.status == ingest_pb2.SubmitResult.STATUS_ACCEPTED
            customer_id = (await wait_for_events(first.timeline, tenant, [chat.event_id]))[
                chat.event_id
            ]
            # The second replica reads the person: their key is in its memory, trusted live.
            assert await _by_id(second, tenant, chat.event_id) == [sentence]

            await first.erasure.EraseCustomer(
                erasure_pb2.EraseCustomerRequest(
                    tenant=tenant, customer_id=customer_id, reason="APPI request", actor=OFFICER
                )
            )

            # Nothing told the second replica; it still must not open what the key sealed.
            assert await _by_id(second, tenant, chat.event_id) == ["[erased]"]
            assert await _texts(second, tenant, customer_id) == {"[erased]"}
        finally:
            await channel.close(grace=None)
