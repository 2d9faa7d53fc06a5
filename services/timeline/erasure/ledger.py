"""The merge ledger at rest: before-snapshots and evidence sealed under the customers' keys."""

from __future__ import annotations

import json
from typing import Any

from services.timeline.erasure.fields import ERASED_VALUE, FieldSealer
from services.timeline.store.documents import Document
from tsunagu.crypto import Binding

_PERSONAL = ("display_name", "identifiers")


class SealedLedger:
    """Seals a ledger entry's personal parts on write, opens them on read.

    Each before-snapshot is sealed under the key of the customer it describes (a split
    gives it back to them; erasing them shreds it); the evidence under the survivor's.
    """

    def __init__(self, fields: FieldSealer) -> None:
        self.fields = fields

    @staticmethod
    def _binding(entry: Document, part: str) -> Binding:
        return Binding(tenant=entry["tenant"], collection="merges", field=part, owner=entry["_id"])

    async def sealed(self, entry: Document) -> Document:
        tenant = entry["tenant"]
        stored = dict(entry)
        befores = []
        for before in entry.get("before", []):
            secret = {k: before.get(k) for k in _PERSONAL}
            (sealed,) = await self.fields.seal(
                tenant,
                before["customer_id"],
                [(json.dumps(secret), self._binding(entry, f"before:{before['customer_id']}"))],
            )
            befores.append({**before, "display_name": "", "identifiers": [], "sealed": sealed})
        stored["before"] = befores
        evidence = dict(entry.get("evidence", {}))
        if evidence.get("identifiers"):
            (stored["sealed_evidence"],) = await self.fields.seal(
                tenant,
                entry["survivor_id"],
                [(json.dumps(evidence["identifiers"]), self._binding(entry, "evidence"))],
            )
            stored["evidence"] = {**evidence, "identifiers": []}
        return stored

    async def opened(self, stored: Document) -> Document:
        tenant = stored["tenant"]
        entry = dict(stored)
        befores = []
        for before in stored.get("before", []):
            if "sealed" not in before:
                befores.append(before)
                continue
            (text,) = await self.fields.open(
                tenant,
                [
                    (
                        before["sealed"],
                        self._binding(stored, f"before:{before['customer_id']}"),
                    )
                ],
            )
            secret: dict[str, Any] = (
                {"display_name": ERASED_VALUE, "identifiers": []}
                if text == ERASED_VALUE
                else json.loads(text)
            )
            befores.append({**{k: v for k, v in before.items() if k != "sealed"}, **secret})
        entry["before"] = befores
        if "sealed_evidence" in stored:
            (text,) = await self.fields.open(
                tenant, [(stored["sealed_evidence"], self._binding(stored, "evidence"))]
            )
            identifiers = [] if text == ERASED_VALUE else json.loads(text)
            entry["evidence"] = {**stored.get("evidence", {}), "identifiers": identifiers}
            del entry["sealed_evidence"]
        return entry
