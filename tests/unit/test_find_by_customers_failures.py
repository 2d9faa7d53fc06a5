"""`find_by_customers` reports a failed read as it is, once every other read has ended (pure
logic over a stand-in collection; the reads themselves are tested on the real store)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import AutoReconnect

from services.timeline.store.by_customer import find_by_customers
from services.timeline.store.documents import Document


class _Cursor:
    def __init__(self, owner: _Collection, customer_id: str) -> None:
        self._owner, self._customer_id = owner, customer_id

    def __aiter__(self) -> _Cursor:
        return self

    async def __anext__(self) -> Document:
        if self._customer_id in self._owner.returned:
            raise StopAsyncIteration
        if self._customer_id == "broken":
            # It fails while the others are still in flight; they end only after.
            self._owner.release.set()
            raise AutoReconnect("connection closed")
        await self._owner.release.wait()
        for _ in range(5):  # a reply that takes a few turns of the loop to arrive
            await asyncio.sleep(0)
        self._owner.returned.add(self._customer_id)
        return {"tenant": "a", "customer_id": self._customer_id}


class _Collection:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.returned: set[str] = set()

    def find(self, query: dict[str, Any], _projection: Any = None) -> _Cursor:
        return _Cursor(self, query["customer_id"])


async def test_the_error_comes_as_it_is_after_the_other_reads_have_ended() -> None:
    collection = _Collection()
    with pytest.raises(AutoReconnect):
        await find_by_customers(
            cast("AsyncCollection[Document]", collection), "a", ["c1", "broken", "c2"]
        )
    # Not left running behind the error: both other reads had finished.
    assert collection.returned == {"c1", "c2"}
