"""A timeline page read with no data key in memory, on the real store: every key it needs in
one query, read from the store and unwrapped again, and nothing served once a key is shredded.
And the keys a batch of new customers writes under: made without a lookup.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from services.timeline.bootstrap import build_core
from services.timeline.cases.store import CaseQuery
from services.timeline.erasure.keys import CustomerKeys
from services.timeline.identity.policy import IdentityPolicy
from services.timeline.recorder import Recorded, TimelineRecorder
from services.timeline.store.command_counts import CommandCounts
from services.timeline.store.documents import Document
from services.timeline.stores import TimelineStore
from tests import builders
from tests.grpc_credentials import CallerSet
from tests.integration.counted_store import commands_sent
from tests.integration.timeline_api import serving_timeline
from tsunagu.crypto import LocalKeyFile
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1 import timeline_pb2, timeline_pb2_grpc

T0 = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
KEY_READS = "find:data_keys"


@dataclass
class Sealed:
    """A timeline with encryption on over the real store, its command counts and its API."""

    tenant: str
    store: TimelineStore
    keys: CustomerKeys
    counts: CommandCounts
    recorder: TimelineRecorder
    api: timeline_pb2_grpc.TimelineServiceAsyncStub

    async def record(self, *interactions: pb.Interaction) -> list[str]:
        outcomes = await self.recorder.record_batch(list(interactions))
        assert all(isinstance(o, Recorded) for o in outcomes), outcomes
        return [o.customer_id for o in outcomes if isinstance(o, Recorded)]

    async def page(self, customer_id: str) -> list[str]:
        """The texts of the customer's first page, read cold (no key, lease or unwrap held)."""
        self.keys.forget_all()
        found = await self.api.ListInteractions(
            timeline_pb2.ListInteractionsRequest(
                tenant=self.tenant, customer_id=customer_id, page_size=50
            )
        )
        return [entry.interaction.content.text for entry in found.entries]


@pytest.fixture
async def sealed(
    mongodb_uri: str, database_name: str, tenant: str, callers: CallerSet, tmp_path: Path
) -> AsyncIterator[Sealed]:
    counts = CommandCounts()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_uri, tz_aware=True, event_listeners=[counts]
    )
    store = TimelineStore(client[database_name], provider=LocalKeyFile(tmp_path / "keys.json"))
    assert store.keys is not None
    await store.ensure_indexes()
    core = build_core(store, identity_for=lambda _t: IdentityPolicy("JP"))
    try:
        async with serving_timeline(store, core, callers) as api:
            yield Sealed(tenant, store, store.keys, counts, core.recorder, api)
    finally:
        await client.drop_database(database_name)
        await client.close()


async def _merged_pair(sealed: Sealed) -> tuple[str, str, dict[str, str]]:
    """A chat customer and a mail customer, merged by a signed-in chat: (survivor, merged-away,
    the text each wrote). Their entries stay sealed under their own customers' keys.
    """
    tenant, address = sealed.tenant, "hana@example.jp"
    chat = builders.chat(tenant, visitor="v1", text="chat words", at=T0)
    mail = builders.email(
        tenant,
        from_address=address,
        extra_identifiers=[pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=address)],
        at=T0 + timedelta(minutes=1),
    )
    mail.content.text = "mail words"
    first, second = await sealed.record(chat, mail)
    assert first != second
    link = builders.verified(
        builders.chat(
            tenant, visitor="v1", email=address, text="link words", at=T0 + timedelta(minutes=2)
        )
    )
    (survivor,) = await sealed.record(link)
    merged_away = second if survivor == first else first
    profile = (await sealed.store.customers.stored_customers(tenant, [survivor]))[survivor]
    assert profile["merged_ids"] == [merged_away]
    return survivor, merged_away, {"chat": "chat words", "mail": "mail words"}


async def test_a_cold_page_of_a_merged_customer_reads_all_its_keys_in_one_query(
    sealed: Sealed,
) -> None:
    survivor, merged_away, words = await _merged_pair(sealed)
    for asked in (survivor, merged_away):  # a merged-away id reads its survivor's page
        unwrapped = sealed.keys.unwraps
        before = commands_sent(sealed.counts)
        texts = await sealed.page(asked)
        sent = commands_sent(sealed.counts) - before
        # Entries under both customers' keys, opened: each key read from the store and
        # unwrapped again, in one query for both (not one for the profile, one for the page).
        assert set(words.values()) <= set(texts), texts
        assert sent[KEY_READS] == 1, sent
        assert sealed.keys.unwraps - unwrapped == 2


async def test_a_shredded_key_opens_nothing_on_a_cold_page_read_in_one_query(
    sealed: Sealed,
) -> None:
    survivor, merged_away, words = await _merged_pair(sealed)
    assert words["mail"] in await sealed.page(survivor)  # readable before the shred
    await sealed.store.erasure.shred(sealed.tenant, [merged_away])
    before = commands_sent(sealed.counts)
    texts = await sealed.page(survivor)
    assert commands_sent(sealed.counts)[KEY_READS] - before[KEY_READS] == 1
    # The survivor's own entries still open; the merged-away customer's read as the mask.
    assert words["chat"] in texts
    assert words["mail"] not in texts
    assert "[erased]" in texts


async def test_a_profile_opened_beside_its_page_uses_the_keys_the_page_read(
    sealed: Sealed,
) -> None:
    survivor, _, _ = await _merged_pair(sealed)
    customers, tenant = sealed.store.customers, sealed.tenant
    sealed.keys.forget_all()
    before = commands_sent(sealed.counts)
    stored = await customers.stored_customers(tenant, [survivor])
    assert stored[survivor]["display_name"] == ""  # as stored: sealed
    await sealed.store.interactions.list_interactions(
        tenant, survivor, limit=50, key_owners=stored[survivor]["merged_ids"]
    )
    opened = await customers.opened_customers(tenant, stored)
    assert commands_sent(sealed.counts)[KEY_READS] - before[KEY_READS] == 1
    assert opened[survivor]["identifiers"][0]["value"] == "v1"


async def test_a_batch_of_new_customers_makes_their_keys_without_looking_for_them(
    sealed: Sealed,
) -> None:
    before = commands_sent(sealed.counts)
    customers = await sealed.record(
        *[builders.chat(sealed.tenant, visitor=f"new{k}", at=T0) for k in range(5)]
    )
    sent = commands_sent(sealed.counts) - before

    # Their ids were just made: nobody can hold a key for them. One insert stores the five
    # keys, and the batch's own reads of what it sealed trust that write (the lease).
    assert sent[KEY_READS] == 0, sent
    assert sent["insert:data_keys"] == 1, sent
    assert len(set(customers)) == 5
    stored = await sealed.store.db["data_keys"].count_documents({"tenant": sealed.tenant})
    assert stored == 5
    assert await sealed.page(customers[0]) == ["Hello, my delivery is late"]


async def test_cases_read_together_ask_for_their_keys_together(sealed: Sealed) -> None:
    customers = await sealed.record(
        *[builders.chat(sealed.tenant, visitor=f"c{k}", text=f"case {k}", at=T0) for k in range(5)]
    )
    profiles = await sealed.store.customers.get_customers(sealed.tenant, customers)
    case_ids = [p["open_case_id"] for p in profiles.values()]
    sealed.keys.forget_all()

    before = commands_sent(sealed.counts)
    by_id = await sealed.store.cases.get(sealed.tenant, case_ids)
    sealed.keys.forget_all()
    listed = await sealed.store.cases.find(sealed.tenant, CaseQuery())
    sent = commands_sent(sealed.counts) - before

    # Five cases of five customers: one key query per read, not one per case.
    assert sent[KEY_READS] == 2, sent
    assert sorted(by_id) == sorted(case_ids)
    assert {c["_id"] for c in listed} == set(case_ids)
    assert {c["customer_id"] for c in by_id.values()} == set(customers)


async def test_a_batch_of_returning_customers_asks_for_their_keys_once_not_per_event(
    sealed: Sealed,
) -> None:
    visitors = [f"back{k}" for k in range(6)]
    customers = await sealed.record(
        *[builders.chat(sealed.tenant, visitor=v, text="first", at=T0) for v in visitors]
    )
    # Long after (no key, lease or unwrap in memory): each comes back, presenting nothing new.
    sealed.keys.forget_all()
    before = commands_sent(sealed.counts)
    again = await sealed.record(
        *[
            builders.chat(sealed.tenant, visitor=v, text="again", at=T0 + timedelta(hours=1))
            for v in visitors
        ]
    )
    sent = commands_sent(sealed.counts) - before

    assert again == customers
    # An attach claims no identifier, so it seals nothing and asks for no key; the keys the
    # batch read its customers with are the ones it writes them under. One query, whatever
    # the number of events (it was one per event, then two).
    assert sent[KEY_READS] == 1, sent
    assert await sealed.page(customers[0]) == ["again", "first"]
