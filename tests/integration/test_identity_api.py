"""Merges and splits through the running timeline: the stream in, gRPC and NATS events out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from tests import builders
from tests.action_keys import session_action_keys
from tests.grpc_credentials import CallerSet, channel_for
from tests.integration.test_ingest_to_timeline import wait_for_events
from tsunagu.bus.notices import customer_subject, decode_notice, tenant_subject
from tsunagu.bus.publisher import InteractionPublisher
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import identity_pb2, notices_pb2, timeline_pb2, timeline_pb2_grpc
from tsunagu.v1 import interaction_pb2 as pb

Starter = Callable[..., AbstractAsyncContextManager[Any]]
T0 = datetime.now(UTC) - timedelta(days=3)


@dataclass
class Identity:
    tenant: str
    timeline: timeline_pb2_grpc.TimelineServiceAsyncStub
    publisher: InteractionPublisher
    changes: asyncio.Queue[identity_pb2.IdentityChange]

    async def send(self, *events: pb.Interaction) -> dict[str, str]:
        for event in events:
            await self.publisher.publish(event)
        return await wait_for_events(self.timeline, self.tenant, [e.event_id for e in events])

    async def next_change(self) -> identity_pb2.IdentityChange:
        return await asyncio.wait_for(self.changes.get(), timeout=10)

    async def history(self, customer_id: str) -> list[timeline_pb2.MergeRecord]:
        answer = await self.timeline.GetMergeHistory(
            timeline_pb2.GetMergeHistoryRequest(tenant=self.tenant, customer_id=customer_id)
        )
        return list(answer.merges)


@pytest.fixture
async def identity(
    run_timeline: Starter, nats_server: NatsServer, tenant: str, callers: CallerSet
) -> AsyncIterator[Identity]:
    rules = {tenant: {"blocklist": ["email:info@shop.example"], "fold_email_subaddress": True}}
    async with run_timeline(tenant_identity=rules) as service:
        nc: Client = await nats.connect(nats_server.url)
        changes: asyncio.Queue[identity_pb2.IdentityChange] = asyncio.Queue()

        async def collect(msg: Msg) -> None:
            changes.put_nowait(identity_pb2.IdentityChange.FromString(msg.data))
            await msg.ack()

        js = nc.jetstream()
        sub = await js.subscribe(f"identity.*.{tenant}", cb=collect, stream="IDENTITY")
        timeline_channel = channel_for(service.server.address, callers.service)
        try:
            yield Identity(
                tenant,
                timeline_pb2_grpc.TimelineServiceStub(timeline_channel),
                InteractionPublisher(js, signer=session_action_keys().signer),
                changes,
            )
        finally:
            await sub.unsubscribe()
            await timeline_channel.close(grace=None)
            await nc.drain()


def _web(tenant: str, email: str, name: str) -> pb.Interaction:
    event = builders.email(
        tenant,
        from_address=email,
        extra_identifiers=[pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value=email)],
        at=T0,
    )
    event.actor.display_name = name
    return event


async def test_merge_and_split_are_explained_over_grpc_and_announced_on_nats(
    identity: Identity,
) -> None:
    tenant = identity.tenant
    mail = _web(tenant, "hanako@example.jp", "Sato Hanako")
    chat = builders.chat(tenant, visitor="v-77", name="Hanako", at=T0 + timedelta(hours=1))
    # The chat gives her address with a sub-address tag: this tenant folds tags.
    link = builders.verified(
        builders.chat(
            tenant, visitor="v-77", email="Hanako+orders@example.jp", at=T0 + timedelta(hours=2)
        )
    )
    owners = await identity.send(mail, chat, link)
    survivor = owners[mail.event_id]
    assert owners[link.event_id] == survivor
    assert owners[chat.event_id] == survivor  # merged: the old id now answers as the survivor

    merged = await identity.next_change()
    assert merged.type == identity_pb2.IdentityChange.TYPE_MERGED
    assert merged.survivor_id == survivor
    [loser] = merged.customer_ids
    assert dict(merged.customer_map) == {loser: survivor}

    [record] = await identity.history(survivor)
    assert record.id == merged.merge_id
    assert record.status == "done"
    assert record.evidence_event_id == link.event_id
    evidence = {(e.identifier.value, e.customer_id) for e in record.evidence}
    assert ("hanako@example.jp", survivor) in evidence
    assert ("v-77", loser) in evidence
    # The merged-away id shows the same history (agents follow links to old ids).
    assert [r.id for r in await identity.history(loser)] == [record.id]

    split = builders.split_merge(tenant, record.id, reason="mother and daughter")
    split.agent_action.customer_id = survivor
    await identity.send(split)
    undone = await identity.next_change()
    assert undone.type == identity_pb2.IdentityChange.TYPE_SPLIT
    assert dict(undone.customer_map) == {loser: loser}
    [record] = await identity.history(survivor)
    assert record.status == "split"
    assert record.split_by.id == "agent-7"
    assert record.split_reason == "mother and daughter"
    customers = await identity.timeline.GetCustomers(
        timeline_pb2.GetCustomersRequest(tenant=tenant, customer_ids=[survivor, loser])
    )
    assert [c.id for c in customers.customers] == [survivor, loser]
    assert loser not in customers.customers[0].merged_ids


async def test_blocklisted_identifier_is_shown_as_protected_and_pops_up_nobody(
    identity: Identity,
) -> None:
    tenant = identity.tenant
    shop = builders.chat(tenant, visitor="v-shop", email="info@shop.example", name="Kato", at=T0)
    owners = await identity.send(shop)
    found = await identity.timeline.GetCustomers(
        timeline_pb2.GetCustomersRequest(tenant=tenant, customer_ids=[owners[shop.event_id]])
    )
    [kato] = found.customers
    assert [(p.identifier.value, p.reason) for p in kato.protected_identifiers] == [
        ("info@shop.example", "blocklisted")
    ]
    assert "info@shop.example" not in [i.value for i in kato.identifiers]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await identity.timeline.ResolveIdentifier(
            timeline_pb2.ResolveIdentifierRequest(
                tenant=tenant,
                identifier=pb.Identifier(kind=pb.IDENTIFIER_KIND_EMAIL, value="INFO@shop.example"),
            )
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_merge_suggestions_are_listed_per_customer_and_for_the_tenant(
    identity: Identity,
) -> None:
    tenant = identity.tenant
    one = _web(tenant, "yamada1@example.jp", "山田 太郎")
    two = _web(tenant, "yamada2@example.com", "山田太郎")
    owners = await identity.send(one, two)
    first, second = owners[one.event_id], owners[two.event_id]
    assert first != second
    for customer_id in (first, ""):
        answer = await identity.timeline.ListMergeSuggestions(
            timeline_pb2.ListMergeSuggestionsRequest(tenant=tenant, customer_id=customer_id)
        )
        [suggestion] = answer.suggestions
        assert sorted(suggestion.customer_ids) == sorted([first, second])
        assert list(suggestion.signals) == ["same_name"]


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (timeline_pb2.GetMergeHistoryRequest(tenant="", customer_id="x"), "INVALID_ARGUMENT"),
        (timeline_pb2.GetMergeHistoryRequest(tenant="ok", customer_id=""), "INVALID_ARGUMENT"),
        (
            timeline_pb2.GetMergeHistoryRequest(tenant="ok", customer_id="c" * 5000),
            "INVALID_ARGUMENT",
        ),
        (timeline_pb2.GetMergeHistoryRequest(tenant="ok", customer_id="nobody"), "NOT_FOUND"),
        (timeline_pb2.ListMergeSuggestionsRequest(tenant="ok", limit=1000), "INVALID_ARGUMENT"),
        (timeline_pb2.ListMergeSuggestionsRequest(tenant="ok", limit=-1), "INVALID_ARGUMENT"),
        (
            timeline_pb2.ListMergeSuggestionsRequest(tenant="ok", customer_id="nobody"),
            "NOT_FOUND",
        ),
        (timeline_pb2.ListMergeSuggestionsRequest(tenant="../etc"), "INVALID_ARGUMENT"),
    ],
)
async def test_identity_queries_refuse_bad_input_and_keep_serving(
    identity: Identity, request_: Any, code: str
) -> None:
    method = (
        identity.timeline.GetMergeHistory
        if isinstance(request_, timeline_pb2.GetMergeHistoryRequest)
        else identity.timeline.ListMergeSuggestions
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await method(request_)
    assert caught.value.code().name == code, caught.value.details()
    answer = await identity.timeline.ListMergeSuggestions(
        timeline_pb2.ListMergeSuggestionsRequest(tenant=identity.tenant)
    )
    assert list(answer.suggestions) == []


async def test_another_tenants_customer_has_no_history_here(identity: Identity) -> None:
    mail = _web(identity.tenant, "mine@example.jp", "Mine")
    owners = await identity.send(mail)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await identity.timeline.GetMergeHistory(
            timeline_pb2.GetMergeHistoryRequest(
                tenant="someone-else", customer_id=owners[mail.event_id]
            )
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_merges_and_splits_notify_every_customer_whose_timeline_changed(
    identity: Identity, nats_server: NatsServer
) -> None:
    tenant = identity.tenant
    nc = await nats.connect(nats_server.url)
    heard: asyncio.Queue[notices_pb2.TimelineUpdated] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        notice = decode_notice(msg.data)
        assert notice is not None, msg.data
        assert msg.subject == customer_subject(tenant, notice.customer_id)
        heard.put_nowait(notice)

    await nc.subscribe(tenant_subject(tenant), cb=collect)
    await nc.flush()  # the subscription reached the server
    try:
        mail = _web(tenant, "yui@example.jp", "Kato Yui")
        chat = builders.chat(tenant, visitor="v-88", name="Yui", at=T0 + timedelta(hours=1))
        link = builders.verified(
            builders.chat(
                tenant, visitor="v-88", email="yui@example.jp", at=T0 + timedelta(hours=2)
            )
        )
        owners = await identity.send(mail, chat, link)
        survivor = owners[link.event_id]
        merged = await identity.next_change()
        [loser] = merged.customer_ids
        split = builders.split_merge(tenant, merged.merge_id, reason="two people")
        split.agent_action.customer_id = survivor
        await identity.send(split)

        by_subject: dict[tuple[str, str], notices_pb2.TimelineUpdated] = {}
        while (loser, split.event_id) not in by_subject:
            notice = await asyncio.wait_for(heard.get(), timeout=10)
            by_subject[(notice.customer_id, notice.event_id)] = notice
    finally:
        await nc.drain()

    on_survivor = by_subject[(survivor, link.event_id)]
    assert list(on_survivor.merged_ids) == [loser]
    assert on_survivor.entry.interaction.event_id == link.event_id
    assert on_survivor.entry.customer_id == survivor
    assert by_subject[(loser, link.event_id)].merged_into == survivor
    assert by_subject[(loser, split.event_id)].split_from == survivor
    assert (survivor, split.event_id) in by_subject
