"""The JetStream streams Tsunagu needs: their declared configuration, provisioning, and checks."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig, StreamSource
from nats.js.errors import NotFoundError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from tsunagu.bus.subjects import (
    DEAD_LETTER_STREAM,
    DEAD_LETTER_SUBJECTS,
    IDENTITY_STREAM,
    IDENTITY_SUBJECTS,
    INTERACTIONS_STREAM,
    INTERACTIONS_SUBJECTS,
    TIMELINE_UPDATED_STREAM,
    TIMELINE_UPDATED_SUBJECTS,
)
from tsunagu.lifecycle import CannotStart

log = logging.getLogger(__name__)

# A mirror of the notice capture kept as long as the interactions: the durable feed of
# timeline outcomes that read models (services/insights) follow, catch up on after downtime
# and rebuild from. A mirror, because a second stream may not capture the same subjects.
TIMELINE_OUTCOMES_STREAM = "TIMELINE_OUTCOMES"

DAY = 24 * 3600.0
# What a service waits, by default, for the provisioning step to have created its streams.
STREAM_WAIT_SECONDS = 30.0
# How the provisioning step is run; named in the error a service fails with.
PROVISION_COMMAND = "python -m tsunagu.bus.provision"


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Retention and de-duplication of the streams.

    `duplicate_window` must cover the longest retry horizon of any channel adapter: a retried
    Submit within it is recognised by its event id and not stored twice.
    """

    duplicate_window_seconds: float = 2 * DAY
    max_age_seconds: float = 30 * DAY
    # The notice capture is a live feed, not a record (the timeline is the source of truth):
    # it only needs to cover a NATS restart and a gateway's reconnect.
    notice_max_age_seconds: float = 5 * 60.0
    max_bytes: int = 10 * 1024**3
    # Per subject (`interactions.<tenant>.<channel>`): a noisy tenant is refused at its own
    # limit instead of filling the stream for everyone. -1: no per-subject limit.
    max_msgs_per_subject: int = -1
    # Below the server's 1 MiB max payload, leaving room for the headers a dead-letter copy adds.
    max_msg_size: int = 1024 * 1024 - 64 * 1024
    replicas: int = 1


_DESCRIPTIONS = {
    INTERACTIONS_STREAM: (
        "Every interaction accepted by ingestion or the gateway, per tenant/channel"
    ),
    DEAD_LETTER_STREAM: "Interactions the timeline could not process, with the error; replayable",
    IDENTITY_STREAM: "Customer merges and splits (tsunagu.v1.IdentityChange), for downstream",
    TIMELINE_UPDATED_STREAM: (
        "The last minutes of timeline notices, for gateways catching up after a reconnect"
    ),
    TIMELINE_OUTCOMES_STREAM: (
        "Every timeline notice, mirrored and kept: the durable feed of read models (insights)"
    ),
}


@dataclass(frozen=True, slots=True)
class _Stream:
    """How one stream differs from the others."""

    name: str
    subjects: str
    # Its share of `max_bytes`: 1 is all of it.
    bytes_divisor: int
    # Publishers set Nats-Msg-Id: retries within the window are recognised as duplicates.
    deduplicated: bool
    # Message size bounded below the server's maximum (ingestion checks events against it).
    size_bounded: bool
    # Full: refuse new publishes (an error the publisher sees) instead of discarding the
    # oldest messages, which may not have been consumed yet.
    refuses_when_full: bool
    # `max_msgs_per_subject` applies (subjects carry the tenant).
    per_tenant: bool
    # Kept for `notice_max_age_seconds` instead of `max_age_seconds`.
    short_lived: bool = False
    # A mirror of this stream (no subjects of its own) instead of a capture of `subjects`.
    mirror_of: str = ""


_STREAMS = (
    _Stream(
        INTERACTIONS_STREAM,
        INTERACTIONS_SUBJECTS,
        1,
        deduplicated=True,
        size_bounded=True,
        refuses_when_full=True,
        per_tenant=True,
    ),
    _Stream(
        DEAD_LETTER_STREAM,
        DEAD_LETTER_SUBJECTS,
        10,
        deduplicated=False,
        size_bounded=False,
        refuses_when_full=True,
        per_tenant=False,
    ),
    # Announcements for downstream readers, not a record: the oldest may go.
    _Stream(
        IDENTITY_STREAM,
        IDENTITY_SUBJECTS,
        10,
        deduplicated=True,
        size_bounded=False,
        refuses_when_full=False,
        per_tenant=False,
    ),
    # Captures the core-NATS notices; the oldest go first, nobody consumes them durably.
    _Stream(
        TIMELINE_UPDATED_STREAM,
        TIMELINE_UPDATED_SUBJECTS,
        100,
        deduplicated=False,
        size_bounded=False,
        refuses_when_full=False,
        per_tenant=False,
        short_lived=True,
    ),
    # Its copies age out with the interactions; the oldest go first when full.
    _Stream(
        TIMELINE_OUTCOMES_STREAM,
        "",
        10,
        deduplicated=False,
        size_bounded=False,
        refuses_when_full=False,
        per_tenant=False,
        mirror_of=TIMELINE_UPDATED_STREAM,
    ),
)


def _config(stream: _Stream, limits: StreamLimits) -> StreamConfig:
    per_subject = limits.max_msgs_per_subject if stream.per_tenant else -1
    return StreamConfig(
        name=stream.name,
        description=_DESCRIPTIONS[stream.name],
        subjects=[stream.subjects] if stream.subjects else None,
        mirror=StreamSource(name=stream.mirror_of) if stream.mirror_of else None,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW if stream.refuses_when_full else DiscardPolicy.OLD,
        max_msgs_per_subject=per_subject,
        # Without it a full subject would discard its own oldest messages even under NEW.
        discard_new_per_subject=stream.refuses_when_full and per_subject > 0,
        # 0: the server's own default window (nothing deduplicates on that stream).
        duplicate_window=limits.duplicate_window_seconds if stream.deduplicated else 0.0,
        max_age=limits.notice_max_age_seconds if stream.short_lived else limits.max_age_seconds,
        max_bytes=limits.max_bytes // stream.bytes_divisor,
        max_msg_size=limits.max_msg_size if stream.size_bounded else -1,
        num_replicas=limits.replicas,
    )


def stream_configs(limits: StreamLimits) -> tuple[StreamConfig, ...]:
    """Every stream Tsunagu uses, as declared for `limits`."""
    return tuple(_config(stream, limits) for stream in _STREAMS)


class Provisioned(StrEnum):
    """What provisioning did to one stream."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def _differences(declared: StreamConfig, current: StreamConfig) -> list[str]:
    """The declared settings the stream does not have (the server fills in the rest)."""
    wanted = declared.as_dict()
    have = current.as_dict()
    if not declared.duplicate_window:
        # Not declared: the server applies its own default window.
        wanted.pop("duplicate_window")
    return sorted(key for key, value in wanted.items() if have.get(key) != value)


async def ensure_streams(
    js: JetStreamContext, limits: StreamLimits | None = None
) -> dict[str, Provisioned]:
    """Create the streams, or update those whose configuration differs from the declared one.

    Only the provisioning step (`python -m tsunagu.bus.provision`) and test fixtures call
    this: were every service to call it, whichever started last would set the limits.
    Running it twice with the same limits changes nothing.

    Returns:
        What was done, per stream name.
    """
    outcome: dict[str, Provisioned] = {}
    for config in stream_configs(limits or StreamLimits()):
        assert config.name is not None
        try:
            info = await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
            outcome[config.name] = Provisioned.CREATED
            log.info("created stream %s", config.name)
            continue
        if changed := _differences(config, info.config):
            await js.update_stream(config)
            outcome[config.name] = Provisioned.UPDATED
            log.info("updated stream %s: %s", config.name, ", ".join(changed))
        else:
            outcome[config.name] = Provisioned.UNCHANGED
    return outcome


class StreamsMissing(CannotStart):
    """Start-up error: streams a service needs were not provisioned in time."""

    def __init__(self, names: Iterable[str], waited: float) -> None:
        self.names = sorted(names)
        super().__init__(
            f"JetStream stream(s) {', '.join(self.names)} do not exist after {waited:.0f}s; "
            f"provisioning creates them: run `{PROVISION_COMMAND}` against this NATS first"
        )


async def _missing(js: JetStreamContext, names: Iterable[str]) -> list[str]:
    missing = []
    for name in names:
        try:
            await js.stream_info(name)
        except NotFoundError:
            missing.append(name)
    return missing


class _StillMissing(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


async def require_streams(
    js: JetStreamContext, names: Iterable[str], *, wait_seconds: float = STREAM_WAIT_SECONDS
) -> None:
    """Return once every stream in `names` exists; services call this instead of declaring them.

    Waits up to `wait_seconds` for a provisioning step running alongside (a Kubernetes Job
    started with the deployments) before giving up.

    Raises:
        StreamsMissing: Some stream still did not exist when the wait ran out.
    """
    wanted = list(names)
    reported = False

    async def check() -> None:
        nonlocal reported
        if missing := await _missing(js, wanted):
            if not reported:
                log.info("waiting for stream(s) %s to be provisioned", ", ".join(missing))
                reported = True
            raise _StillMissing(missing)

    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(_StillMissing),
            stop=stop_after_delay(wait_seconds),
            wait=wait_fixed(min(0.5, wait_seconds)),
            reraise=True,
        ):
            with attempt:
                await check()
    except _StillMissing as still:
        raise StreamsMissing(still.names, wait_seconds) from None
