"""The interaction log's words are sealed under the customer's data key in the store's files."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from tests import builders
from tests.byte_search import hits, wait_until_on_disk
from tests.grpc_credentials import CallerSet
from tests.integration.sealed_services import sealed_services
from tests.integration.test_ingest_to_timeline import submit, wait_for_events
from tsunagu.v1 import ingest_pb2, timeline_pb2

Starter = Callable[..., AbstractAsyncContextManager[Any]]


@pytest.fixture
def store_dir(session_dir: Path) -> Path:
    """The embedded store's data directory (the session's `MongoWireStore`)."""
    return session_dir / "store"


@pytest.fixture(params=["sealed", "plain"])
async def system(
    request: pytest.FixtureRequest,
    run_timeline: Starter,
    run_ingest: Starter,
    callers: CallerSet,
    tmp_path: Path,
) -> AsyncIterator[dict[str, Any]]:
    """Timeline and chat ingestion, with encryption on, or off (the search's control)."""
    sealed = request.param == "sealed"
    async with sealed_services(
        run_timeline=run_timeline,
        run_ingest=run_ingest,
        callers=callers,
        key_file=tmp_path / "keys.json" if sealed else None,
    ) as services:
        yield {"sealed": sealed, "chat": services.ingest["chat"], "timeline": services.timeline}


async def test_the_store_files_hold_no_sentence_a_customer_wrote(
    system: dict[str, Any], tenant: str, store_dir: Path
) -> None:
    if os.environ.get("MONGODB_URI"):
        pytest.skip("searches the embedded store's files; MONGODB_URI names another store")
    tag = uuid.uuid4().hex[:8]
    sentence = f"The kettle {tag} whistles the national anthem"
    event = builders.chat(tenant, text=sentence, visitor=f"visitor-{tag}")
    assert (await submit(system["chat"], event)).status == ingest_pb2.SubmitResult.STATUS_ACCEPTED
    await wait_for_events(system["timeline"], tenant, [event.event_id])
    stored = await system["timeline"].GetInteractions(
        timeline_pb2.GetInteractionsRequest(tenant=tenant, event_ids=[event.event_id])
    )
    assert stored.entries[0].interaction.content.text == sentence

    # The event id is stored in the clear: once it is on disk, so is its entry.
    await wait_until_on_disk(store_dir, event.event_id)
    found = hits(store_dir, [sentence])
    if system["sealed"]:
        assert found == {}
    else:
        assert sentence in found  # the control: the search does see an unsealed log
