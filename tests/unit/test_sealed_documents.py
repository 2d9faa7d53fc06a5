"""Store-boundary codecs: what they write holds no plaintext, reads give it back, shredding
masks it, and a tampered or moved ciphertext fails closed.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bson import BSON

from services.timeline.erasure.cases import SealedCases
from services.timeline.erasure.codec import ERASED_TEXT, RawSealer
from services.timeline.erasure.customers import SealedCustomers
from services.timeline.erasure.fields import ERASED_VALUE, FieldSealer
from services.timeline.erasure.identities import SealedIdentifiers
from services.timeline.erasure.keys import CustomerKeys
from services.timeline.erasure.ledger import SealedLedger
from services.timeline.erasure.store import DataKeyDoc
from services.timeline.interactions.entries import interaction_of
from tsunagu.crypto import DecryptionFailed, LocalKeyFile
from tsunagu.v1 import interaction_pb2 as pb

AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
PHONE = "+819011112222"
EMAIL = "sato.hanako@example.jp"
NAME = "佐藤 花子"


class MemoryKeys:
    """The `data_keys` part of `ErasureStore`, in memory."""

    def __init__(self) -> None:
        self.docs: dict[str, DataKeyDoc] = {}

    async def data_keys(self, tenant: str, owners: Iterable[str]) -> dict[str, DataKeyDoc]:
        return {o: self.docs[f"{tenant}/{o}"] for o in owners if f"{tenant}/{o}" in self.docs}

    async def add_data_keys(self, docs: Sequence[DataKeyDoc]) -> set[str]:
        lost = {doc["owner"] for doc in docs if doc["_id"] in self.docs}
        for doc in docs:
            self.docs.setdefault(doc["_id"], doc)
        return lost

    def shred(self, tenant: str, owner: str, keys: CustomerKeys) -> None:
        """What `Eraser` does: delete the stored key, then drop it from this replica's cache."""
        del self.docs[f"{tenant}/{owner}"]
        keys.forget(tenant, [owner])


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _keys_on(store: MemoryKeys, tmp_path: Path, clock: Clock, **periods: float) -> CustomerKeys:
    """This replica's keys over `store`, on `clock`, with these cache or lease periods."""
    provider = LocalKeyFile(tmp_path / "keys.json")
    return CustomerKeys(store, provider, clock=clock, **periods)  # type: ignore[arg-type]


@pytest.fixture
def memory() -> MemoryKeys:
    return MemoryKeys()


@pytest.fixture
def keys(memory: MemoryKeys, tmp_path: Path) -> CustomerKeys:
    return CustomerKeys(memory, LocalKeyFile(tmp_path / "keys.json"))  # type: ignore[arg-type]


@pytest.fixture
def fields(keys: CustomerKeys, tmp_path: Path) -> FieldSealer:
    # The same key file as `keys`: one provider per process, as deployed.
    return FieldSealer(keys, LocalKeyFile(tmp_path / "keys.json"))


def _on_disk(doc: dict[str, Any]) -> bytes:
    return BSON.encode(doc)


def _customer() -> dict[str, Any]:
    return {
        "_id": "cus_1",
        "tenant": "acme",
        "version": 3,
        "status": "active",
        "display_name": NAME,
        "name_key": "佐藤花子",
        "search_name": "さとうはなこ",
        "identifiers": [
            {"kind": "phone", "value": PHONE, "verified": True},
            {"kind": "email", "value": EMAIL},
        ],
        "last_agent_remark": {
            "event_id": "e1",
            "text": f"call back on {PHONE}",
            "agent": {"id": "a1", "display_name": "Agent"},
        },
        "interaction_count": 2,
    }


async def test_a_sealed_profile_holds_no_plaintext_and_opens_back(fields: FieldSealer) -> None:
    codec = SealedCustomers(fields)
    original = _customer()

    stored = await codec.sealed(original)
    opened = await codec.opened(stored)

    for secret in (PHONE, EMAIL, NAME, "さとう", "佐藤花子"):
        assert secret.encode() not in _on_disk(stored)
    assert stored["interaction_count"] == 2
    assert opened["display_name"] == NAME
    assert opened["identifiers"] == original["identifiers"]
    assert opened["name_key"] == "佐藤花子"
    assert opened["last_agent_remark"] == original["last_agent_remark"]
    # Equality and prefix lookups work on the blind indexes.
    assert stored["identifiers"][0]["value"] == fields.index("acme", "phone", PHONE)
    assert stored["name_key"] == codec.signal_index("acme", "name_key", "佐藤花子")
    assert codec.search_queries("acme", "さと")[0] in stored["search_prefixes"]


async def test_a_shredded_profile_reads_as_the_mask(
    fields: FieldSealer, memory: MemoryKeys, keys: CustomerKeys
) -> None:
    codec = SealedCustomers(fields)
    stored = await codec.sealed(_customer())
    memory.shred("acme", "cus_1", keys)

    opened = await codec.opened(stored)

    assert opened["display_name"] == ERASED_VALUE
    assert {i["value"] for i in opened["identifiers"]} == {ERASED_VALUE}


async def test_a_value_moved_to_another_index_or_tampered_fails_closed(
    fields: FieldSealer,
) -> None:
    codec = SealedIdentifiers(fields, collection="identities")
    phone, email = await codec.sealed(
        "acme",
        "cus_1",
        [{"kind": "phone", "value": PHONE}, {"kind": "email", "value": EMAIL}],
        prefixes=True,
    )
    swapped = {**phone, "sealed_value": email["sealed_value"]}
    envelope = base64.b64decode(phone["sealed_value"])
    tampered = {**phone, "sealed_value": base64.b64encode(envelope[:-1] + b"\x00").decode()}
    not_base64 = {**phone, "sealed_value": "%%%"}

    assert (await codec.opened("acme", [phone]))[0]["value"] == PHONE
    assert fields.prefix_index("acme", "+8190") in phone["value_prefixes"]
    for bad in (swapped, tampered, not_base64):
        with pytest.raises(DecryptionFailed):
            await codec.opened("acme", [bad])
    # Another tenant holds no such key: the mask, never the value.
    assert (await codec.opened("other", [phone]))[0]["value"] == ERASED_VALUE


def _log_doc(text: str) -> dict[str, Any]:
    interaction = pb.Interaction(
        event_id="e1", tenant="acme", channel=pb.CHANNEL_CHAT, kind=pb.KIND_MESSAGE
    )
    interaction.content.text = text
    return {
        "_id": "acme/e1",
        "tenant": "acme",
        "event_id": "e1",
        "customer_id": "cus_1",
        "origin_customer_id": "cus_1",
        "channel": "chat",
        "kind": "message",
        "direction": "inbound",
        "occurred_at": AT,
        "identifiers": [{"kind": "phone", "value": PHONE}],
        "raw": interaction.SerializeToString(),
    }


async def test_the_log_entry_is_sealed_and_masked_once_shredded(
    keys: CustomerKeys, memory: MemoryKeys
) -> None:
    codec = RawSealer(keys)
    (stored,) = await codec.seal_docs([_log_doc("my parrot ate the receipt")])

    assert b"parrot" not in _on_disk(stored)
    (opened,) = await codec.open_docs("acme", [stored])
    assert interaction_of(opened).content.text == "my parrot ate the receipt"
    with pytest.raises(DecryptionFailed):
        await codec.open_docs("acme", [{**stored, "event_id": "e2"}])  # moved to another entry
    memory.shred("acme", "cus_1", keys)
    (masked,) = await codec.open_docs("acme", [stored])
    assert interaction_of(masked).content.text == ERASED_TEXT
    assert interaction_of(masked).channel == pb.CHANNEL_CHAT


async def test_ledger_snapshots_and_case_words_are_sealed(fields: FieldSealer) -> None:
    entry = {
        "_id": "mrg_1",
        "tenant": "acme",
        "survivor_id": "cus_1",
        "merged_ids": ["cus_2"],
        "evidence": {"event_id": "e1", "identifiers": [{"kind": "phone", "value": PHONE}]},
        "before": [
            {"customer_id": "cus_2", "display_name": NAME, "identifiers": [{"value": EMAIL}]}
        ],
    }
    case = {
        "_id": "case_1",
        "tenant": "acme",
        "customer_id": "cus_1",
        "origin_customer_id": "cus_1",
        "resolution_summary": f"refunded; card on file for {NAME}",
        "escalation_reason": "",
        "follow_ups": [{"id": "f1", "reason": f"call {PHONE}", "due_at": AT}],
        "csat": {"score": 4, "comment": "Sato was lovely"},
        "cancellation_request": {"reason": "health", "reason_detail": "hospital stay"},
        "last_handoff": {"summary": "angry about parcel", "at": AT},
    }
    ledger, cases = SealedLedger(fields), SealedCases(fields)

    stored_entry, stored_case = await ledger.sealed(entry), await cases.sealed(case)

    for secret in (PHONE, EMAIL, NAME, "lovely", "hospital", "parcel"):
        assert secret.encode() not in _on_disk(stored_entry) + _on_disk(stored_case)
    assert stored_case["csat"]["score"] == 4
    assert stored_case["cancellation_request"] == {"reason": "health"}
    assert await ledger.opened(stored_entry) == entry
    assert await cases.opened(stored_case) == case


async def test_a_key_shredded_by_another_replica_opens_nothing_once_the_lease_has_passed(
    memory: MemoryKeys, tmp_path: Path
) -> None:
    # This replica read under the key, so its memory holds it; the erasure ran elsewhere, so
    # nothing here was told. Its lease runs out before that erasure returns (`Eraser`).
    now = Clock()
    keys = _keys_on(memory, tmp_path, now, lease_seconds=2)
    codec = RawSealer(keys)
    (stored,) = await codec.seal_docs([_log_doc("the words")])
    (before,) = await codec.opened_read("acme", _read([stored]), owners=["cus_1"])
    del memory.docs["acme/cus_1"]  # shredded by another replica
    now.now = 2.0

    (after,) = await codec.open_docs("acme", [stored])
    (after_alongside,) = await codec.opened_read("acme", _read([stored]), owners=["cus_1"])

    assert interaction_of(before).content.text == "the words"
    assert interaction_of(after).content.text == ERASED_TEXT
    assert interaction_of(after_alongside).content.text == ERASED_TEXT


async def test_reads_within_a_lease_ask_the_store_once(tmp_path: Path) -> None:
    now = Clock()
    asked = CountingKeys()
    keys = _keys_on(asked, tmp_path, now, lease_seconds=2)
    codec = RawSealer(keys)
    stored = await codec.seal_docs([_log_doc("the words")])
    keys.forget_all()  # as a replica that never wrote for this customer
    asked.calls = 0  # the write's own lookup

    for _ in range(3):
        await codec.opened_read("acme", _read(stored), owners=["cus_1"])
    now.now = 2.5
    (late,) = await codec.opened_read("acme", _read(stored), owners=["cus_1"])

    assert asked.calls == 2
    assert interaction_of(late).content.text == "the words"


class CountingKeys(MemoryKeys):
    """`MemoryKeys` counting the `data_keys` round trips."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def data_keys(self, tenant: str, owners: Iterable[str]) -> dict[str, DataKeyDoc]:
        self.calls += 1
        return await super().data_keys(tenant, owners)


async def test_the_keys_a_write_found_or_made_are_leased_to_the_reads_right_after_it(
    tmp_path: Path,
) -> None:
    # The store's answer to the write's lookup (or the insert that stored a new key) is as
    # good as a read's: the reads within the lease ask nothing; after it, they ask again.
    now = Clock()
    asked = CountingKeys()
    keys = _keys_on(asked, tmp_path, now, lease_seconds=2)
    codec = RawSealer(keys)
    stored = await codec.seal_docs([_log_doc("the words")])
    asked.calls = 0

    (soon,) = await codec.opened_read("acme", _read(stored), owners=["cus_1"])
    within = asked.calls
    now.now = 1.5  # a later write of the same customer: the 30 s cache, no new lease
    await codec.seal_docs([_log_doc("more words")])
    now.now = 2.5
    del asked.docs["acme/cus_1"]  # shredded by another replica meanwhile
    (late,) = await codec.opened_read("acme", _read(stored), owners=["cus_1"])

    assert within == 0
    assert interaction_of(soon).content.text == "the words"
    assert asked.calls == 1
    assert interaction_of(late).content.text == ERASED_TEXT


async def test_keys_of_new_owners_are_made_without_a_lookup_and_a_stored_one_wins(
    tmp_path: Path,
) -> None:
    provider = LocalKeyFile(tmp_path / "keys.json")
    asked = CountingKeys()
    earlier = await CustomerKeys(asked, provider).for_writing("acme", ["cus_replayed"])  # type: ignore[arg-type]
    asked.calls = 0
    keys = CustomerKeys(asked, provider)  # type: ignore[arg-type]

    made = await keys.for_writing("acme", ["cus_new", "cus_replayed"], new=True)

    # One lookup, for the owner whose key was refused as stored already (a replay).
    assert asked.calls == 1
    assert made["cus_replayed"].key_id == earlier["cus_replayed"].key_id
    assert made["cus_replayed"].key == earlier["cus_replayed"].key
    assert asked.docs["acme/cus_new"]["key_id"] == made["cus_new"].key_id


async def test_a_key_is_unwrapped_once_per_cache_period_however_often_it_is_read(
    memory: MemoryKeys, tmp_path: Path
) -> None:
    # Every read asks the store: only the unwrap is cached.
    now, keys, codec, stored = await _sealed_on(memory, tmp_path, lease_seconds=0)
    keys.forget_all()  # as a replica that never wrote for this customer

    for _ in range(5):
        await codec.open_docs("acme", stored)
    within = keys.unwraps
    now.now = 31
    for _ in range(5):
        await codec.open_docs("acme", stored)

    assert within == 1
    assert keys.unwraps == 2


async def test_a_rewrapped_key_is_unwrapped_anew_rather_than_taken_from_the_cache(
    memory: MemoryKeys, tmp_path: Path
) -> None:
    now, _, codec, stored = await _sealed_on(memory, tmp_path, lease_seconds=2)
    await codec.open_docs("acme", stored)
    doc = memory.docs["acme/cus_1"]
    tampered = bytearray(doc["wrapped"])
    tampered[-1] ^= 1
    memory.docs["acme/cus_1"] = {**doc, "wrapped": bytes(tampered)}
    now.now = 3.0  # the lease is over, the unwrap still cached

    # The cached unwrap belongs to other wrapped bytes: these are unwrapped, and fail closed.
    with pytest.raises(DecryptionFailed):
        await codec.open_docs("acme", stored)


async def _read(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return docs


async def _sealed_on(
    memory: MemoryKeys, tmp_path: Path, **periods: float
) -> tuple[Clock, CustomerKeys, RawSealer, list[dict[str, Any]]]:
    """One log entry sealed by a replica on a clock of the test's (30 s unwrap cache)."""
    now = Clock()
    keys = _keys_on(memory, tmp_path, now, cache_seconds=30, **periods)
    codec = RawSealer(keys)
    return now, keys, codec, await codec.seal_docs([_log_doc("the words")])


class RacedKeys(MemoryKeys):
    """Another replica stores its key between this one's read and its insert."""

    def __init__(self, theirs: DataKeyDoc) -> None:
        super().__init__()
        self.theirs = theirs

    async def add_data_keys(self, docs: Sequence[DataKeyDoc]) -> set[str]:
        self.docs.setdefault(self.theirs["_id"], self.theirs)
        return await super().add_data_keys(docs)


async def test_a_key_another_replica_stored_first_is_the_one_used(tmp_path: Path) -> None:
    provider = LocalKeyFile(tmp_path / "keys.json")
    made = MemoryKeys()
    theirs = (await CustomerKeys(made, provider).for_writing("acme", ["cus_1"]))["cus_1"]  # type: ignore[arg-type]
    raced = RacedKeys(made.docs["acme/cus_1"])

    mine = (await CustomerKeys(raced, provider).for_writing("acme", ["cus_1"]))["cus_1"]  # type: ignore[arg-type]

    assert mine.key_id == theirs.key_id
    assert mine.key == theirs.key


def _entry_of(owner: str, n: int) -> dict[str, Any]:
    """A log entry of `owner` (its origin customer), on customer `cus_1`'s timeline."""
    doc = _log_doc(f"words {n} of {owner}")
    raw = pb.Interaction.FromString(doc["raw"])
    raw.event_id = f"e{n}"
    return {
        **doc,
        "_id": f"acme/e{n}",
        "event_id": f"e{n}",
        "origin_customer_id": owner,
        "identifiers": [{"kind": "phone", "value": f"+8190{n:08d}"}],
        "raw": raw.SerializeToString(),
    }


async def test_a_page_under_many_owners_asks_for_their_keys_once_not_per_entry(
    tmp_path: Path,
) -> None:
    # A survivor's page: its own entries and those of two customers merged into it.
    asked = CountingKeys()
    keys = CustomerKeys(asked, LocalKeyFile(tmp_path / "keys.json"))  # type: ignore[arg-type]
    fields = FieldSealer(keys, LocalKeyFile(tmp_path / "keys.json"))
    codec = RawSealer(keys, SealedIdentifiers(fields, collection="interactions"))
    owners = ["cus_1", "cus_2", "cus_3"]
    stored = await codec.seal_docs([_entry_of(owners[n % 3], n) for n in range(30)])
    keys.forget_all()
    asked.calls = 0

    opened = await codec.open_docs("acme", stored)

    assert asked.calls == 1
    assert [interaction_of(d).content.text for d in opened] == [
        f"words {n} of {owners[n % 3]}" for n in range(30)
    ]
    assert [d["identifiers"][0]["value"] for d in opened] == [f"+8190{n:08d}" for n in range(30)]


async def test_a_read_that_asks_anyway_renews_the_leases_about_to_end(tmp_path: Path) -> None:
    now = Clock()
    asked = CountingKeys()
    keys = _keys_on(asked, tmp_path, now, lease_seconds=2)
    codec = RawSealer(keys)
    stored = await codec.seal_docs([_entry_of(["cus_1", "cus_2"][n % 2], n) for n in range(4)])
    keys.forget_all()
    await codec.opened_read("acme", _read(stored[:1]), owners=["cus_1"])  # cus_1 leased at 0
    now.now = 1.5  # cus_1's lease ends within half a lease; cus_2 has none
    asked.calls = 0

    await codec.opened_read("acme", _read(stored), owners=["cus_1", "cus_2"])
    renewing = asked.calls
    now.now = 2.5  # cus_1's first lease is over, its renewal is not
    opened = await codec.opened_read("acme", _read(stored), owners=["cus_1", "cus_2"])

    assert renewing == 1  # one query for cus_2 and the renewal of cus_1
    assert asked.calls == 1  # and none after it, within the renewed leases
    assert {interaction_of(d).content.text for d in opened} == {
        f"words {n} of {['cus_1', 'cus_2'][n % 2]}" for n in range(4)
    }


async def test_keys_known_before_the_read_come_with_it_and_the_rest_in_one_more_ask(
    tmp_path: Path,
) -> None:
    asked = CountingKeys()
    keys = CustomerKeys(asked, LocalKeyFile(tmp_path / "keys.json"))  # type: ignore[arg-type]
    codec = RawSealer(keys)
    stored = await codec.seal_docs([_entry_of(["cus_1", "cus_2"][n % 2], n) for n in range(6)])

    keys.forget_all()
    asked.calls = 0
    await codec.opened_read("acme", _read(stored), owners=["cus_1", "cus_2"])
    foreseen = asked.calls
    keys.forget_all()
    asked.calls = 0
    opened = await codec.opened_read("acme", _read(stored), owners=["cus_1"])

    assert foreseen == 1  # alongside the read, nothing after it
    assert asked.calls == 2  # cus_1 alongside, cus_2 (only the entries name it) after
    assert {interaction_of(d).content.text for d in opened} == {
        f"words {n} of {['cus_1', 'cus_2'][n % 2]}" for n in range(6)
    }


async def test_a_page_with_a_malformed_or_tampered_entry_fails_closed_whole(
    keys: CustomerKeys, fields: FieldSealer
) -> None:
    codec = RawSealer(keys, SealedIdentifiers(fields, collection="interactions"))
    stored = await codec.seal_docs([_entry_of("cus_1", n) for n in range(3)])
    not_base64 = [{**stored[0], "identifiers": [{**stored[0]["identifiers"][0]}]}, *stored[1:]]
    not_base64[0]["identifiers"][0]["sealed_value"] = "%%% not an envelope"
    flipped = bytearray(stored[1]["raw"])
    flipped[-1] ^= 1
    tampered = [stored[0], {**stored[1], "raw": bytes(flipped)}, stored[2]]
    moved = [stored[0], {**stored[1], "raw": stored[2]["raw"]}, stored[2]]

    for page in (not_base64, tampered, moved):
        with pytest.raises(DecryptionFailed):
            await codec.opened_read("acme", _read(page), owners=["cus_1"])
