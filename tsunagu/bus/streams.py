"""Declares the JetStream streams Tsunagu needs, idempotently, at service start."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from tsunagu.bus.subjects import (
    DEAD_LETTER_STREAM,
    DEAD_LETTER_SUBJECTS,
    IDENTITY_STREAM,
    IDENTITY_SUBJECTS,
    INTERACTIONS_STREAM,
    INTERACTIONS_SUBJECTS,
)

log = logging.getLogger(__name__)

DAY = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Retention and de-duplication of the interactions stream.

    `duplicate_window` must cover the longest retry horizon of any channel adapter: a retried
    Submit within it is recognised by its event id and not stored twice.
    """

    duplicate_window_seconds: float = 2 * DAY
    max_age_seconds: float = 30 * DAY
    max_bytes: int = 10 * 1024**3
    # Below the server's 1 MiB max payload, leaving room for the headers a dead-letter copy adds.
    max_msg_size: int = 1024 * 1024 - 64 * 1024
    replicas: int = 1


def interactions_stream_config(limits: StreamLimits) -> StreamConfig:
    return StreamConfig(
        name=INTERACTIONS_STREAM,
        description="Every interaction accepted by ingestion or the gateway, per tenant/channel",
        subjects=[INTERACTIONS_SUBJECTS],
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=limits.duplicate_window_seconds,
        max_age=limits.max_age_seconds,
        max_bytes=limits.max_bytes,
        max_msg_size=limits.max_msg_size,
        num_replicas=limits.replicas,
    )


def dead_letter_stream_config(limits: StreamLimits) -> StreamConfig:
    return StreamConfig(
        name=DEAD_LETTER_STREAM,
        description="Interactions the timeline could not process, with the error; replayable",
        subjects=[DEAD_LETTER_SUBJECTS],
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=limits.max_age_seconds,
        max_bytes=limits.max_bytes // 10,
        num_replicas=limits.replicas,
    )


def identity_stream_config(limits: StreamLimits) -> StreamConfig:
    return StreamConfig(
        name=IDENTITY_STREAM,
        description="Customer merges and splits (tsunagu.v1.IdentityChange), for downstream",
        subjects=[IDENTITY_SUBJECTS],
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=limits.duplicate_window_seconds,
        max_age=limits.max_age_seconds,
        max_bytes=limits.max_bytes // 10,
        num_replicas=limits.replicas,
    )


async def ensure_streams(js: JetStreamContext, limits: StreamLimits | None = None) -> None:
    """Create the streams, or update them to the declared configuration."""
    limits = limits or StreamLimits()
    configs = (
        interactions_stream_config(limits),
        dead_letter_stream_config(limits),
        identity_stream_config(limits),
    )
    for config in configs:
        assert config.name is not None
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
            log.info("created stream %s", config.name)
        else:
            await js.update_stream(config)
