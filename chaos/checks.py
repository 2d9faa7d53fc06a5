"""What a scenario left behind, read from the store and the dead-letter stream directly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from google.protobuf.message import DecodeError
from pymongo import AsyncMongoClient

from services.timeline.deadletters import dead_letters
from tsunagu.bus.subjects import DEAD_LETTER_STREAM
from tsunagu.crypto import DecryptionFailed, LocalKeyFile
from tsunagu.crypto.bus_seal import BusSealer
from tsunagu.v1 import interaction_pb2

# Invalid events the harness publishes on purpose carry event ids with this prefix (not a
# canonical id: the timeline's contract check dead-letters them).
INVALID_PREFIX = "chaos-invalid-"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Stored:
    """The interaction documents of some event ids, as the store has them."""

    copies: Counter[str]
    # Event id → (customer id, when the timeline recorded it, wall-clock seconds).
    where: dict[str, tuple[str, float]]

    @classmethod
    def nothing(cls) -> Stored:
        return cls(Counter(), {})

    @property
    def duplicated(self) -> set[str]:
        return {event_id for event_id, n in self.copies.items() if n > 1}


def _seconds(at: datetime) -> float:
    # PyMongo returns naive UTC datetimes.
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


class StoreProbe:
    """Direct reads of the timeline's database (never through the timeline)."""

    def __init__(self, mongodb_uri: str, database: str, tenant: str) -> None:
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            mongodb_uri, serverSelectionTimeoutMS=5000
        )
        self._db = self._client[database]
        self._tenant = tenant

    async def close(self) -> None:
        await self._client.close()

    async def stored(self, event_ids: Iterable[str]) -> Stored:
        """Every document of these event ids: how many each has, and where and when."""
        ids = list(event_ids)
        copies: Counter[str] = Counter()
        where: dict[str, tuple[str, float]] = {}
        for offset in range(0, len(ids), _CHUNK):
            cursor = self._db["interactions"].find(
                {"tenant": self._tenant, "event_id": {"$in": ids[offset : offset + _CHUNK]}},
                {"_id": 0, "event_id": 1, "customer_id": 1, "recorded_at": 1},
            )
            async for doc in cursor:
                copies[doc["event_id"]] += 1
                where[doc["event_id"]] = (doc["customer_id"], _seconds(doc["recorded_at"]))
        return Stored(copies, where)

    async def miscounted(self) -> list[str]:
        """Active customers whose counts differ from their documents in the log."""
        logged: dict[str, Counter[str]] = {}
        async for doc in self._db["interactions"].find(
            {"tenant": self._tenant}, {"_id": 0, "customer_id": 1, "channel": 1}
        ):
            logged.setdefault(doc["customer_id"], Counter())[doc["channel"]] += 1
        wrong = []
        async for customer in self._db["customers"].find(
            {"tenant": self._tenant, "status": "active"},
            {"_id": 1, "interaction_count": 1, "by_channel": 1},
        ):
            counted = logged.get(customer["_id"], Counter())
            if customer["interaction_count"] != counted.total() or dict(
                customer["by_channel"]
            ) != dict(counted):
                wrong.append(customer["_id"])
        return wrong


@dataclass(slots=True)
class DeadLetters:
    """The tenant's dead letters, sorted into the ones sent invalid on purpose and the rest."""

    invalid: set[str] = field(default_factory=set)
    # Event id (or the raw subject, when not even decodable) → the reason in its headers.
    others: dict[str, str] = field(default_factory=dict)


async def read_dead_letters(
    nats_url: str, tenant: str, *, key_file: Path | None = None
) -> DeadLetters:
    """Every dead letter of `tenant`, read as the operator (services may not read them)."""
    found = DeadLetters()
    nc = await nats.connect(nats_url, name="tsunagu-chaos-check")
    try:
        js = nc.jetstream()
        # `dead_letters` asks an empty stream for its message 0, which NATS refuses.
        if (await js.stream_info(DEAD_LETTER_STREAM)).state.messages == 0:
            return found
        # Ingestion seals what it publishes (the stack's key file opens it).
        sealer = None if key_file is None else BusSealer(LocalKeyFile(key_file))
        async for letter in dead_letters(js, tenant=tenant):
            try:
                data = letter.data
                if sealer is not None:
                    data = sealer.open(tenant=tenant, data=data, headers=letter.headers)
                event_id = interaction_pb2.Interaction.FromString(data).event_id
            except (DecodeError, DecryptionFailed):
                event_id = f"#{letter.sequence}"
            if event_id.startswith(INVALID_PREFIX):
                found.invalid.add(event_id)
            else:
                found.others[event_id] = letter.error
    finally:
        await nc.close()
    return found


def invalid_interactions(
    tenant: str, scenario: str, count: int
) -> Sequence[tuple[str, str, bytes]]:
    """(event id, subject, payload) of events NATS takes and the contract refuses: bad ids."""
    items = []
    for n in range(count):
        item = interaction_pb2.Interaction(
            event_id=f"{INVALID_PREFIX}{scenario}-{n}",
            tenant=tenant,
            channel=interaction_pb2.CHANNEL_CHAT,
            kind=interaction_pb2.KIND_MESSAGE,
        )
        items.append((item.event_id, f"interactions.{tenant}.chat", item.SerializeToString()))
    return items
