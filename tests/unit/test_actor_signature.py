"""The signed-actor format: key ids, which events need a signature, loading keys."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.timeline.signed_actors import ActorKeysNotLoaded, SignedActors
from tests import builders
from tests.action_keys import ActionKeys
from tsunagu.bus.actor_signature import key_id, needs_signed_actor
from tsunagu.v1 import interaction_pb2 as pb


def test_the_key_id_is_the_rfc_7638_thumbprint() -> None:
    # RFC 8037, appendix A.3: the thumbprint of its example Ed25519 public key.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    raw = base64.urlsafe_b64decode(x + "=")

    assert key_id(Ed25519PublicKey.from_public_bytes(raw)) == (
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    )


def test_agent_actions_need_a_signature_and_customer_facing_events_do_not() -> None:
    note = builders.agent_action("acme", "cus_1", note=pb.NoteAction(text="x"))
    reply = builders.agent_reply("acme", visitor="v-1", text="hello")
    forged_on_chat = builders.chat("acme", visitor="v-1")
    forged_on_chat.agent_action.note.text = "claims to be an action"

    assert needs_signed_actor(note)
    assert not needs_signed_actor(reply)
    assert needs_signed_actor(forged_on_chat)


def test_a_timeline_refuses_to_start_with_a_key_file_that_is_not_a_public_key(
    tmp_path: Path,
) -> None:
    keys = ActionKeys.create(tmp_path)
    note = builders.agent_action("acme", "cus_1", note=pb.NoteAction(text="x"))

    # The public half loads and verifies what the private half signed.
    SignedActors.from_files([keys.public]).check(note, note.SerializeToString(), keys.headers(note))
    with pytest.raises(ActorKeysNotLoaded, match="gateway public keys"):
        SignedActors.from_files([keys.private])
    with pytest.raises(ActorKeysNotLoaded):
        SignedActors.from_files([tmp_path / "missing.pem"])
