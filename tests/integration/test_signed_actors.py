"""The timeline executes an agent action only with the gateway's signature over it.

Everything here is published with the operator's credential, which may publish on
`interactions.*.agent_desk` like the gateway: what a stolen or misconfigured credential could
do. Only actions whose `Tsunagu-Signed-Actor` verifies with a configured gateway key, over
exactly this tenant, event, actor, roles and payload, are executed; the rest land on the
dead-letter stream with a stable reason and are never stored. Customer-facing events need no
signature.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import builders
from tests.action_keys import ActionKeys, session_action_keys
from tests.grpc_credentials import CallerSet
from tests.integration.test_consumer_faults import (
    REASON_HEADER,
    Bus,
    Starter,
    agent_desk_subject,
    header,
    open_bus,
)
from tsunagu.bus import headers
from tsunagu.local.processes import NatsServer
from tsunagu.v1 import interaction_pb2 as pb


async def _customer(bus: Bus, visitor: str) -> str:
    chat = builders.chat(bus.tenant, visitor=visitor)
    await bus.publish(chat.SerializeToString())
    return (await bus.recorded([chat.event_id]))[chat.event_id]


def _note(tenant: str, customer_id: str) -> pb.Interaction:
    return builders.agent_action(tenant, customer_id, note=pb.NoteAction(text="called back"))


def _with_claims(token: str, **changes: object) -> str:
    """The JWS with its payload changed and the original signature kept."""
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{encoded}.{signature}"


@dataclass(frozen=True)
class Forgery:
    """An agent action as published (bytes and headers) and the reason it must be refused."""

    event_id: str
    data: bytes
    headers: dict[str, str]


def _stranger() -> ActionKeys:
    """A key pair the timeline does not trust (an attacker's own)."""
    return session_action_keys("stranger")


def _unsigned(keys: ActionKeys, tenant: str, customer: str, _other: str) -> Forgery:
    note = _note(tenant, customer)
    return Forgery(note.event_id, note.SerializeToString(), {})


def _roles_raised(keys: ActionKeys, tenant: str, customer: str, other: str) -> Forgery:
    merge = builders.merge_customers(tenant, [customer, other])
    signed = keys.headers(merge, roles=["agent"])[headers.SIGNED_ACTOR]
    forged = {headers.SIGNED_ACTOR: _with_claims(signed, roles=["agent", "supervisor"])}
    return Forgery(merge.event_id, merge.SerializeToString(), forged)


def _other_customer(keys: ActionKeys, tenant: str, customer: str, other: str) -> Forgery:
    note = _note(tenant, customer)
    signed = keys.headers(note)
    note.agent_action.customer_id = other
    return Forgery(note.event_id, note.SerializeToString(), signed)


def _other_actor(keys: ActionKeys, tenant: str, customer: str, _other: str) -> Forgery:
    note = _note(tenant, customer)
    signed = keys.headers(note)
    note.actor.id, note.actor.display_name = "lead-2", "Ito"
    return Forgery(note.event_id, note.SerializeToString(), signed)


def _other_tenant(keys: ActionKeys, tenant: str, customer: str, _other: str) -> Forgery:
    # A genuine action of another tenant, replayed into this one.
    note = _note(f"{tenant}x", customer)
    signed = keys.headers(note)
    note.tenant = tenant
    return Forgery(note.event_id, note.SerializeToString(), signed)


def _own_key(_keys: ActionKeys, tenant: str, customer: str, _other: str) -> Forgery:
    note = _note(tenant, customer)
    return Forgery(note.event_id, note.SerializeToString(), _stranger().headers(note))


def _own_key_named_as_the_gateways(
    keys: ActionKeys, tenant: str, customer: str, _other: str
) -> Forgery:
    note = _note(tenant, customer)
    token = _stranger().headers(note)[headers.SIGNED_ACTOR]
    head, payload, signature = token.split(".")
    claimed = json.dumps({"alg": "EdDSA", "typ": "JWT", "kid": keys.signer.key_id}).encode()
    head = base64.urlsafe_b64encode(claimed).rstrip(b"=").decode()
    return Forgery(
        note.event_id,
        note.SerializeToString(),
        {headers.SIGNED_ACTOR: f"{head}.{payload}.{signature}"},
    )


def _not_a_jws(_keys: ActionKeys, tenant: str, customer: str, _other: str) -> Forgery:
    note = _note(tenant, customer)
    return Forgery(note.event_id, note.SerializeToString(), {headers.SIGNED_ACTOR: "agent-7"})


FORGERIES: dict[str, tuple[Callable[[ActionKeys, str, str, str], Forgery], str]] = {
    "unsigned": (_unsigned, "unsigned_actor"),
    "roles raised from agent to supervisor after signing": (_roles_raised, "forged_actor"),
    "another customer than signed": (_other_customer, "forged_actor"),
    "another actor than signed": (_other_actor, "forged_actor"),
    "replayed onto another tenant": (_other_tenant, "forged_actor"),
    "signed with another key": (_own_key, "actor_key_unknown"),
    "another key claiming the gateway's key id": (_own_key_named_as_the_gateways, "forged_actor"),
    "not a signature": (_not_a_jws, "forged_actor"),
}


async def test_an_agent_action_signed_by_the_gateway_is_executed(
    bus: Bus, action_keys: ActionKeys
) -> None:
    customer = await _customer(bus, "visitor-signed")
    note = _note(bus.tenant, customer)

    await bus.publish(
        note.SerializeToString(),
        subject=agent_desk_subject(bus.tenant),
        headers=action_keys.headers(note),
    )

    assert await bus.recorded([note.event_id]) == {note.event_id: customer}
    assert await bus.dead_letters(agent_desk_subject(bus.tenant)) == []


@pytest.mark.parametrize("name", FORGERIES)
async def test_a_forged_or_altered_agent_action_is_dead_lettered_and_never_executed(
    bus: Bus, action_keys: ActionKeys, name: str
) -> None:
    forge, reason = FORGERIES[name]
    customer = await _customer(bus, "visitor-a")
    other = await _customer(bus, "visitor-b")
    forgery = forge(action_keys, bus.tenant, customer, other)
    subject = agent_desk_subject(bus.tenant)

    await bus.publish(forgery.data, subject=subject, headers=forgery.headers)
    # Handled in stream order: once the next (signed) action is stored, the forgery was seen.
    after = _note(bus.tenant, customer)
    await bus.publish(
        after.SerializeToString(), subject=subject, headers=action_keys.headers(after)
    )
    await bus.recorded([after.event_id])

    [dead] = await bus.dead_letters(subject)
    assert header(dead, REASON_HEADER) == reason
    assert dead.data == forgery.data
    assert await bus.stored([forgery.event_id]) == set()
    # Nothing of it happened: in particular the forged merge left both customers apart.
    assert await bus.recorded([after.event_id]) == {after.event_id: customer}
    assert customer != other


async def test_a_customer_facing_event_needs_no_signature(bus: Bus) -> None:
    reply = builders.agent_reply(bus.tenant, visitor="visitor-reply", text="We are on it")

    await bus.publish(reply.SerializeToString())

    assert reply.event_id in await bus.recorded([reply.event_id])


async def test_during_a_key_rotation_the_old_and_the_new_key_are_both_accepted(
    *,
    run_timeline: Starter,
    nats_server: NatsServer,
    tenant: str,
    action_keys: ActionKeys,
    tmp_path: Path,
    callers: CallerSet,
) -> None:
    new = ActionKeys.create(tmp_path, "next")
    rotating = [action_keys.public, new.public]

    def rotating_timeline(**options: object) -> AbstractAsyncContextManager[object]:
        return run_timeline(**options, action_verify_key_files=rotating)

    async with open_bus(rotating_timeline, nats_server, tenant, callers) as bus:
        customer = await _customer(bus, "visitor-rotation")
        old_signed, new_signed = _note(tenant, customer), _note(tenant, customer)
        # A key no longer (or never) listed: refused even while two others are accepted.
        retired_signed = _note(tenant, customer)
        subject = agent_desk_subject(tenant)
        signers = ((retired_signed, _stranger()), (old_signed, action_keys), (new_signed, new))
        for note, keys in signers:
            await bus.publish(note.SerializeToString(), subject=subject, headers=keys.headers(note))

        stored = await bus.recorded([old_signed.event_id, new_signed.event_id])
        [dead] = await bus.dead_letters(subject)
        refused = await bus.stored([retired_signed.event_id])

    assert set(stored) == {old_signed.event_id, new_signed.event_id}
    assert header(dead, REASON_HEADER) == "actor_key_unknown"
    assert refused == set()
