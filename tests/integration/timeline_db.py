"""A fresh timeline database on the test store: its slices' stores, indexed, dropped after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from pymongo import AsyncMongoClient, monitoring

from services.timeline.store.documents import Document
from services.timeline.stores import TimelineStore


@asynccontextmanager
async def timeline_db(
    mongodb_uri: str, name: str, listeners: Sequence[monitoring.CommandListener] = ()
) -> AsyncIterator[TimelineStore]:
    """`TimelineStore` over database `name`, with its indexes; the database is dropped after.

    `listeners` are told every command the store's client sends (counts, shapes).
    """
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongodb_uri, tz_aware=True, event_listeners=list(listeners)
    )
    try:
        store = TimelineStore(client[name])
        await store.ensure_indexes()
        yield store
    finally:
        await client.drop_database(name)
        await client.close()
