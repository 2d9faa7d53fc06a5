"""The timeline's MongoDB database as the slices' stores, and their indexes."""

from __future__ import annotations

import logging
from datetime import timedelta

from pymongo import AsyncMongoClient, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase

from services.timeline.audit.store import AuditStore
from services.timeline.cases.store import CaseStore
from services.timeline.erasure.sealing import sealing_codecs
from services.timeline.erasure.store import ErasureStore
from services.timeline.identity.store import IdentityStore
from services.timeline.interactions.store import InteractionStore, Retention
from services.timeline.profiles.store import CustomerStore
from services.timeline.settings import TimelineSettings
from services.timeline.store.command_counts import counting_listeners
from services.timeline.store.command_spans import CommandSpans
from services.timeline.store.documents import Document
from services.timeline.store.timing import CommandTiming
from tsunagu.crypto import KeyProvider

log = logging.getLogger(__name__)


class TimelineStore:
    """One store per slice over one database; each is the only code touching its collections."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        *,
        provider: KeyProvider | None = None,
        retention: Retention | None = None,
        audit_retention: timedelta = timedelta(days=400),
    ) -> None:
        self.db = db
        self.erasure = ErasureStore(db)
        self.provider = provider
        # With a key provider, personal fields are sealed under their customer's data key at
        # each slice's store boundary (docs/privacy.md); without, documents are as written.
        codecs = None if provider is None else sealing_codecs(self.erasure, provider)
        self.keys = codecs.keys if codecs else None
        self.interactions = InteractionStore(
            db["interactions"],
            codec=codecs.log if codecs else None,
            retention=retention,
        )
        self.customers = CustomerStore(db["customers"], codec=codecs.profiles if codecs else None)
        self.identities = IdentityStore(db, codec=codecs.identities if codecs else None)
        self.cases = CaseStore(db["cases"], codec=codecs.cases if codecs else None)
        self.audit = AuditStore(db["audit_log"], retention=audit_retention)

    async def ensure_indexes(self) -> None:
        """Create every slice's indexes (idempotent; run at start)."""
        await self.interactions.ensure_indexes()
        if backfilled := await self.interactions.backfill_timeline_keys():
            log.warning("gave %d interactions stored before timeline keys their key", backfilled)
        await self.identities.ensure_indexes()
        await self.customers.ensure_indexes()
        await self.cases.ensure_indexes()
        await self.audit.ensure_indexes()
        await self.erasure.ensure_indexes()


def open_store(settings: TimelineSettings) -> tuple[AsyncMongoClient[Document], TimelineStore]:
    """The MongoDB client (the caller closes it) and the slices' stores over its database."""
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        serverSelectionTimeoutMS=10_000,
        # Timing for the metrics, one span per command (no documents) for the traces, and
        # the benchmark's command counts when it asks for them.
        event_listeners=[
            CommandTiming(),
            CommandSpans(),
            *counting_listeners(settings.store_command_counts_file),
        ],
    )
    concern = settings.mongodb_write_concern
    db = mongo.get_database(
        settings.mongodb_database,
        write_concern=WriteConcern(w=int(concern) if concern.isdigit() else concern),
    )
    return mongo, TimelineStore(
        db,
        provider=settings.key_provider(),
        retention=settings.retention_for,
        audit_retention=timedelta(days=settings.audit_retention_days),
    )
