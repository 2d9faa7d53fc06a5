"""Durable JetStream pull consumer: pump → bounded queue → recorder, with a dead-letter stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.timeline.consumer_spans import batch_span, event_span
from services.timeline.errors import PermanentError
from services.timeline.recorder import Recorded, TimelineRecorder
from services.timeline.store.error_text import error_text, is_store_error
from tsunagu.bus import headers
from tsunagu.bus.subjects import (
    CHANNEL_TOKENS,
    INTERACTIONS_STREAM,
    INTERACTIONS_SUBJECTS,
    dead_letter_subject,
    interaction_subject,
)
from tsunagu.contracts import BUS_LIMITS, ContractViolation, Reason, check_interaction
from tsunagu.v1 import interaction_pb2

log = logging.getLogger(__name__)

# Redelivery delays by attempt: a store hiccup gets a quick retry, a real outage a slower one.
BACKOFF_SECONDS = (0.2, 1.0, 5.0, 15.0, 30.0)


def interaction_subject_or_none(interaction: interaction_pb2.Interaction) -> str | None:
    """The subject this interaction belongs on, or None when its tenant/channel are unusable."""
    if not interaction.tenant or interaction.channel not in CHANNEL_TOKENS:
        return None
    return interaction_subject(interaction.tenant, interaction.channel)


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    durable: str = "timeline"
    subject_filter: str = INTERACTIONS_SUBJECTS
    fetch_batch: int = 64
    max_ack_pending: int = 1024
    ack_wait_seconds: float = 30.0
    max_deliver: int = 5
    fetch_timeout_seconds: float = 1.0


class InteractionConsumer:
    """Feeds the stream's interactions to the recorder and announces what was committed."""

    def __init__(
        self,
        js: JetStreamContext,
        recorder: TimelineRecorder,
        *,
        options: ConsumerOptions,
        announce: Callable[[Recorded], Awaitable[None]],
    ) -> None:
        self._js = js
        self._recorder = recorder
        self._options = options
        self._announce = announce
        self._queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=options.fetch_batch * 2)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        opts = self._options
        self._sub = await self._js.pull_subscribe(
            opts.subject_filter,
            durable=opts.durable,
            stream=INTERACTIONS_STREAM,
            config=ConsumerConfig(
                durable_name=opts.durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=opts.ack_wait_seconds,
                max_deliver=opts.max_deliver,
                max_ack_pending=opts.max_ack_pending,
                filter_subject=opts.subject_filter,
            ),
        )
        self._tasks = [
            asyncio.create_task(self._guard(self._pump()), name="timeline-pump"),
            asyncio.create_task(self._guard(self._work()), name="timeline-worker"),
        ]

    async def _guard(self, work: Awaitable[None]) -> None:
        """A crashed task stops the service through the same graceful path as a signal."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("consumer task failed")
            if not self.failed.done():
                self.failed.set_result(exc)

    async def _pump(self) -> None:
        while not self._stopping.is_set():
            try:
                msgs = await self._sub.fetch(
                    self._options.fetch_batch, timeout=self._options.fetch_timeout_seconds
                )
            except TimeoutError:
                # nats-py raises its own TimeoutError (a subclass) or, when the server's
                # request-timeout reply races the client's deadline, a plain asyncio one.
                continue
            for msg in msgs:
                await self._queue.put(msg)  # bounded: backpressure on fetching

    async def _work(self) -> None:
        while True:
            msgs = [await self._queue.get()]
            # Whatever else is already fetched goes into the same batch: under load batches
            # fill up and share store round trips; when idle, one message goes at once.
            while len(msgs) < self._options.fetch_batch and not self._queue.empty():
                msgs.append(self._queue.get_nowait())
            try:
                await self.handle_batch(msgs)
            finally:
                for _ in msgs:
                    self._queue.task_done()

    async def handle_batch(self, msgs: list[Msg]) -> None:
        """Record messages; ack, retry later, or dead-letter each one. Never raises."""
        with batch_span(msgs):
            readable: list[tuple[Msg, interaction_pb2.Interaction]] = []
            for msg in msgs:
                interaction = await self._guarded(msg, self._admit(msg))
                if interaction is not None:
                    readable.append((msg, interaction))
            try:
                outcomes = await self._recorder.record_batch([i for _, i in readable])
            except Exception as exc:
                log.error(
                    "recording a batch of %d failed: %s",
                    len(readable),
                    error_text(exc),
                    # A store error's traceback would repeat its message, document included.
                    exc_info=not is_store_error(exc),
                )
                outcomes = [exc] * len(readable)
            for (msg, interaction), outcome in zip(readable, outcomes, strict=True):
                with event_span(msg, interaction, outcome):
                    await self._guarded(msg, self._settle(msg, interaction, outcome))

    async def _guarded(
        self, msg: Msg, step: Awaitable[interaction_pb2.Interaction | None]
    ) -> interaction_pb2.Interaction | None:
        try:
            return await step
        except Exception:
            # Even dead-lettering failed (NATS trouble): leave the message to be redelivered.
            log.exception("could not handle message %s; it will be redelivered", msg.subject)
            with contextlib.suppress(Exception):
                await msg.nak(delay=BACKOFF_SECONDS[-1])
            return None

    async def _admit(self, msg: Msg) -> interaction_pb2.Interaction | None:
        """Decode and check a message; one that breaks the contract is dead-lettered.

        Ingestion and the gateway check the same contract before publishing; checking again
        here keeps whatever else can publish on the stream (a replay, a buggy or hostile
        producer) from storing and serving what they would refuse.
        """
        try:
            interaction = interaction_pb2.Interaction.FromString(msg.data)
        except DecodeError as exc:
            await self._dead_letter(
                msg, f"not a tsunagu.v1.Interaction: {exc}", reason=Reason.MALFORMED
            )
            return None
        if not interaction.tenant or not interaction.event_id:
            await self._dead_letter(
                msg,
                "interaction without tenant or event_id",
                reason=Reason.TENANT_INVALID if interaction.event_id else Reason.EVENT_ID_INVALID,
            )
            return None
        try:
            check_interaction(interaction, limits=BUS_LIMITS, now=datetime.now(UTC))
        except ContractViolation as exc:
            await self._dead_letter(msg, str(exc), reason=exc.code)
            return None
        if interaction_subject_or_none(interaction) != msg.subject:
            # Publish permissions are per subject: a producer allowed on one tenant's subjects
            # must not write into another tenant by what it puts in the payload.
            await self._dead_letter(
                msg,
                f"payload (tenant, channel) does not match subject {msg.subject!r}",
                reason=Reason.SUBJECT_MISMATCH,
            )
            return None
        return interaction

    async def _settle(
        self, msg: Msg, interaction: interaction_pb2.Interaction, outcome: Recorded | Exception
    ) -> None:
        if isinstance(outcome, PermanentError):
            await self._dead_letter(msg, str(outcome), reason=Reason.REFUSED)
            return
        if isinstance(outcome, Exception):
            delivered = msg.metadata.num_delivered or 1
            if delivered >= self._options.max_deliver:
                await self._dead_letter(
                    msg,
                    error_text(outcome),
                    reason=Reason.DELIVERIES_EXHAUSTED,
                )
                return
            delay = BACKOFF_SECONDS[min(delivered, len(BACKOFF_SECONDS)) - 1]
            log.warning(
                "event %s failed (attempt %d), retrying: %s",
                interaction.event_id,
                delivered,
                error_text(outcome),
            )
            await msg.nak(delay=delay)
            return
        await msg.ack()
        try:
            await self._announce(outcome)
        except Exception:  # the event is committed; a lost notice is not fatal
            log.exception("could not announce event %s", outcome.event_id)

    async def _dead_letter(
        self, msg: Msg, error: str, *, reason: Reason = Reason.NOT_RECORDED
    ) -> None:
        log.error("dead-lettering message %s (%s): %s", msg.subject, reason, error)
        meta = msg.metadata
        # NATS's own headers (Nats-Msg-Id, Nats-Expected-Stream, ...) belong to the original
        # publish; copied, they would make the dead-letter stream refuse the message.
        kept = {k: v for k, v in (msg.headers or {}).items() if not k.lower().startswith("nats-")}
        await self._js.publish(
            dead_letter_subject(msg.subject),
            msg.data,
            headers={
                **kept,
                headers.DEAD_LETTER_ERROR: error[:1000],
                headers.DEAD_LETTER_REASON: reason,
                headers.DEAD_LETTER_DELIVERIES: str(meta.num_delivered),
                headers.DEAD_LETTER_ORIGINAL_SEQUENCE: str(meta.sequence.stream),
            },
        )
        await msg.ack_sync()

    async def stop(self, grace_seconds: float) -> None:
        """Stop fetching, finish what was fetched within the budget, then cancel."""
        self._stopping.set()
        if self._tasks:
            pump = self._tasks[0]
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(pump, self._options.fetch_timeout_seconds + 1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace_seconds)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._tasks:
            # Otherwise draining the connection waits for a pull request that never completes.
            await self._sub.unsubscribe()
        # Unacked messages that were fetched but not processed are redelivered after ack_wait.
