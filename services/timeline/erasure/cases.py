"""Cases at rest: the words agents and customers wrote sealed under the customer's key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson import json_util

from services.timeline.erasure.fields import ERASED_VALUE, FieldSealer
from services.timeline.erasure.keys import KeyRing
from services.timeline.store.documents import Document
from tsunagu.crypto import Binding

# Free text a case keeps: summaries, reasons, a CSAT comment, a cancellation's details.
_TEXTS = ("resolution_summary", "escalation_reason")


def _owner(doc: Document) -> str:
    # Where the case began: a split returns it there, erasing that person shreds it.
    return str(doc.get("origin_customer_id") or doc["customer_id"])


class SealedCases:
    """Seals a case's words on write and opens them on read (`cases.store` calls it).

    Counts, dates, states, the CSAT score and the cancellation reason code stay readable:
    they are what survives an erasure for statistics.
    """

    def __init__(self, fields: FieldSealer) -> None:
        self.fields = fields

    @staticmethod
    def _binding(doc: Document) -> Binding:
        return Binding(tenant=doc["tenant"], collection="cases", field="words", owner=doc["_id"])

    async def sealed_many(self, docs: Sequence[Document]) -> list[Document]:
        return await self.fields.sealed_many(docs, _owner, self.sealed)

    async def sealed(self, doc: Document) -> Document:
        stored = dict(doc)
        secret: dict[str, Any] = {k: doc.get(k, "") for k in _TEXTS}
        for key in _TEXTS:
            stored[key] = ""
        if doc.get("last_handoff"):
            secret["last_handoff"] = doc["last_handoff"]
            stored["last_handoff"] = None
        secret["follow_up_reasons"] = [t.get("reason", "") for t in doc.get("follow_ups", [])]
        stored["follow_ups"] = [{**t, "reason": ""} for t in doc.get("follow_ups", [])]
        if csat := doc.get("csat"):
            secret["csat_comment"] = csat.get("comment", "")
            stored["csat"] = {**csat, "comment": ""}
        if request := doc.get("cancellation_request"):
            secret["cancellation_request"] = request
            stored["cancellation_request"] = {"reason": request.get("reason")}
        (stored["sealed_words"],) = await self.fields.seal(
            doc["tenant"], _owner(doc), [(json_util.dumps(secret), self._binding(doc))]
        )
        return stored

    async def opened_many(self, tenant: str, stored: Sequence[Document]) -> list[Document]:
        """`opened` over many of the tenant's cases: their owners' keys asked for at once (not
        per case; nothing asked for those under a lease).
        """

        async def read() -> Sequence[Document]:
            return stored

        return await self.fields.opened_read(
            tenant,
            read(),
            owners=(),
            also=lambda docs: {_owner(doc) for doc in docs if "sealed_words" in doc},
            open_one=self.opened,
        )

    async def opened(self, stored: Document, ring: KeyRing | None = None) -> Document:
        """The case's words opened (the mask's empty words once its key was shredded); the key
        from `ring` where it has checked the case's owner.
        """
        if "sealed_words" not in stored:
            return stored
        (text,) = await self.fields.open(
            stored["tenant"], [(stored["sealed_words"], self._binding(stored))], ring
        )
        doc = {k: v for k, v in stored.items() if k != "sealed_words"}
        if text == ERASED_VALUE:
            return doc
        secret = json_util.loads(text, json_options=json_util.JSONOptions(tz_aware=True))
        for key in _TEXTS:
            doc[key] = secret.get(key, "")
        if "last_handoff" in secret:
            doc["last_handoff"] = secret["last_handoff"]
        reasons = secret.get("follow_up_reasons", [])
        doc["follow_ups"] = [
            {**t, "reason": reasons[i] if i < len(reasons) else ""}
            for i, t in enumerate(stored.get("follow_ups", []))
        ]
        if "csat_comment" in secret and doc.get("csat"):
            doc["csat"] = {**doc["csat"], "comment": secret["csat_comment"]}
        if "cancellation_request" in secret:
            doc["cancellation_request"] = secret["cancellation_request"]
        return doc
