"""The composition root: the only place the timeline's objects are built and wired."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import grpc
from nats.aio.client import Client

from services.timeline.api import TimelineApi
from services.timeline.audit.chain import AuditChain
from services.timeline.cases.keeper import CaseKeeper
from services.timeline.cases.policy import CasePolicy
from services.timeline.consumer import ConsumerOptions, InteractionConsumer
from services.timeline.erasure.api import SERVICE_NAME as ERASURE_SERVICE
from services.timeline.erasure.api import ErasureApi
from services.timeline.erasure.eraser import Eraser
from services.timeline.faults import DependencyProbe
from services.timeline.identity.commands import IdentityCommands
from services.timeline.identity.events import IdentityChangePublisher
from services.timeline.identity.policy import IdentityPolicy
from services.timeline.identity.resolver import IdentityAnnouncer, IdentityResolver
from services.timeline.identity.split import MergeSplitter
from services.timeline.identity.suggestions import MergeSuggestions
from services.timeline.metrics import StreamGauges
from services.timeline.notices import TimelineAnnouncer
from services.timeline.privacy_api import PrivacyApi
from services.timeline.profiles.model import CustomerDoc
from services.timeline.profiles.projector import Projector
from services.timeline.recorder import TimelineRecorder
from services.timeline.retention_sweep import RetentionSweep
from services.timeline.settings import TimelineSettings
from services.timeline.signed_actors import SignedActors
from services.timeline.stores import TimelineStore
from tsunagu.grpc_auth import admit_kind
from tsunagu.rpc import MAX_QUERY_REQUEST_BYTES, GrpcServer
from tsunagu.v1 import (
    erasure_pb2_grpc,
    privacy_pb2,
    privacy_pb2_grpc,
    timeline_pb2,
    timeline_pb2_grpc,
)

Clock = Callable[[], datetime]
_CONSUMER_SETTINGS = {
    "subject_filter",
    "fetch_batch",
    "max_ack_pending",
    "ack_wait_seconds",
    "max_deliver",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _default_case_policy(_tenant: str) -> CasePolicy:
    return CasePolicy()


@dataclass(frozen=True, slots=True)
class Core:
    """The recording side of the timeline: its slices and the unit of work over them."""

    store: TimelineStore
    resolver: IdentityResolver
    splitter: MergeSplitter
    suggestions: MergeSuggestions
    recorder: TimelineRecorder

    async def finish_interrupted(self) -> tuple[int, int]:
        """Finish merges and splits a crash cut off half-way; returns how many of each."""
        merges = await self.resolver.complete_pending_merges()
        splits = await self.splitter.complete_pending_splits()
        return merges, splits


def build_core(
    store: TimelineStore,
    *,
    identity_for: Callable[[str], IdentityPolicy],
    case_policy_for: Callable[[str], CasePolicy] = _default_case_policy,
    announce_identity: IdentityAnnouncer | None = None,
    clock: Clock = _now,
) -> Core:
    """Wire the slices over `store` (tests call this with their own store and clock)."""
    suggestions = MergeSuggestions(store.identities, customers=store.customers)
    resolver = IdentityResolver(
        store.identities,
        customers=store.customers,
        interactions=store.interactions,
        cases=store.cases,
        clock=clock,
        policy_for=identity_for,
        announce=announce_identity,
    )
    splitter = MergeSplitter(
        store.identities,
        resolver,
        customers=store.customers,
        interactions=store.interactions,
        cases=store.cases,
    )

    async def suggest(profile: CustomerDoc) -> int:
        return await suggestions.suggest_for(profile, at=clock())

    recorder = TimelineRecorder(
        interactions=store.interactions,
        resolver=resolver,
        commands=IdentityCommands(resolver, splitter, suggestions),
        cases=CaseKeeper(
            store.cases,
            interactions=store.interactions,
            policy_for=case_policy_for,
            same_customer=resolver.same_customer,
        ),
        projector=Projector(
            store.customers, interactions=store.interactions, cases=store.cases, suggest=suggest
        ),
        identity_for=identity_for,
        clock=clock,
    )
    return Core(store, resolver, splitter, suggestions, recorder)


@dataclass(frozen=True, slots=True)
class Timeline:
    """Everything the running service holds: the core, its gRPC server and its consumer."""

    core: Core
    server: GrpcServer
    consumer: InteractionConsumer
    # Consumer lag and dead-letter depth for /metrics; runs while the consumer does.
    gauges: StreamGauges
    # Deletes interactions and audit records whose retention ran out.
    retention: RetentionSweep


def bootstrap(
    settings: TimelineSettings,
    *,
    store: TimelineStore,
    bus: Client,
    clock: Clock = _now,
) -> Timeline:
    """Build the timeline over an open store and NATS connection (nothing starts here)."""
    js = bus.jetstream()
    core = build_core(
        store,
        identity_for=settings.identity_for,
        case_policy_for=settings.case_policy_for,
        announce_identity=IdentityChangePublisher(js),
        clock=clock,
    )
    api = TimelineApi(
        store,
        core.resolver,
        region_for=settings.region_for,
        suggestions=core.suggestions,
        clock=clock,
    )

    privacy = PrivacyApi(AuditChain(store.audit, clock=clock), store.audit)

    erasure = ErasureApi(
        None
        if store.provider is None
        else Eraser(
            erasure=store.erasure,
            interactions=store.interactions,
            customers=store.customers,
            identities=store.identities,
            provider=store.provider,
            clock=clock,
            forget=store.keys.forget if store.keys else lambda _tenant, _owners: None,
        )
    )

    def register(server: grpc.aio.Server) -> None:
        timeline_pb2_grpc.add_TimelineServiceServicer_to_server(api, server)
        privacy_pb2_grpc.add_PrivacyServiceServicer_to_server(privacy, server)
        erasure_pb2_grpc.add_ErasureServiceServicer_to_server(erasure, server)

    server = GrpcServer(
        host=settings.host,
        port=settings.port,
        register=register,
        service_names=[
            timeline_pb2.DESCRIPTOR.services_by_name["TimelineService"].full_name,
            privacy_pb2.DESCRIPTOR.services_by_name["PrivacyService"].full_name,
            ERASURE_SERVICE,
        ],
        # Its requests carry ids and cursors, never events; responses: the shared limit.
        max_receive_bytes=MAX_QUERY_REQUEST_BYTES,
        # Service identities only (adapters write through ingest, never read); a caller
        # limited to some tenants may name only those in its requests.
        security=settings.server_security(admit=admit_kind("service")),
    )
    consumer = InteractionConsumer(
        js,
        core.recorder,
        options=ConsumerOptions(
            durable=settings.consumer_name,
            # The remaining options carry the settings' own names.
            **settings.model_dump(include=_CONSUMER_SETTINGS),
        ),
        # Encryption on: no personal data in notices (captured on disk by TIMELINE_UPDATED).
        announce=TimelineAnnouncer(bus, with_entries=settings.key_file is None),
        actors=SignedActors.from_files(settings.action_verify_key_files),
        # While the store or NATS is down the consumer holds its messages and is not ready.
        probe=DependencyProbe(partial(store.db.command, "ping"), bus),
        readiness=server.set_ready,
        bus_connected=lambda: bus.is_connected,
        sealer=settings.bus_sealer(),
    )
    gauges = StreamGauges(
        js, durable=settings.consumer_name, every_seconds=settings.metrics_sample_seconds
    )
    retention = RetentionSweep(
        [
            ("interactions", store.interactions.delete_expired),
            ("audit_log", store.audit.delete_expired),
        ],
        every_seconds=settings.retention_sweep_seconds,
        clock=clock,
    )
    return Timeline(core, server, consumer, gauges, retention)
