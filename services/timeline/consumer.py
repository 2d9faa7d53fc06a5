"""Durable JetStream pull consumer: pump → bounded queue → recorder, with a dead-letter stream.

Failures are classified (services.timeline.faults): a dependency down holds the messages in
progress and pauses the consumer until a probe passes; only an event that can never be
recorded goes to the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import nats.errors
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span
from tenacity import AsyncRetrying, retry_if_exception, wait_exponential

from services.timeline import metrics as measure
from services.timeline.consumer_spans import batch_span, event_span, start_event_span
from services.timeline.faults import Fault, classify, is_transient, reason_of
from services.timeline.recorder import Recorded, TimelineRecorder
from services.timeline.signed_actors import SignedActors
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
from tsunagu.crypto.bus_seal import BusSealer
from tsunagu.crypto.envelope import DecryptionFailed
from tsunagu.v1 import interaction_pb2

log = logging.getLogger(__name__)

# Redelivery delays by attempt, for failures that are neither a dependency down nor the event.
BACKOFF_SECONDS = (0.2, 1.0, 5.0, 15.0, 30.0)

Probe = Callable[[], Awaitable[object]]
"""Raises (a transient error) while a dependency the consumer needs is unavailable."""
Readiness = Callable[[bool], Awaitable[None]]
# Publishes a batch's notices, each under its event's span context (same order).
Announce = Callable[[Sequence[Recorded], Sequence[Context]], Awaitable[None]]
"""Sends recorded events' notices; returns once the bus has them."""


async def _always_ready(_ready: bool) -> None:
    return None


def _always_connected() -> bool:
    return True


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
    # The longest pause between two probes of a dependency that is down.
    probe_max_wait_seconds: float = 5.0


@dataclass(slots=True)
class _Owned:
    """A fetched message not settled yet, and when JetStream last heard about it."""

    msg: Msg
    touched: float


@dataclass(slots=True)
class Held:
    """Messages of a batch left unsettled because a dependency is down, and why."""

    msgs: list[Msg] = field(default_factory=list)
    cause: BaseException | None = None

    def add(self, msg: Msg, cause: BaseException) -> None:
        self.msgs.append(msg)
        self.cause = cause


class InteractionConsumer:
    """Feeds the stream's interactions to the recorder and announces what was committed."""

    def __init__(
        self,
        js: JetStreamContext,
        recorder: TimelineRecorder,
        *,
        options: ConsumerOptions,
        announce: Announce,
        actors: SignedActors,
        probe: Probe,
        readiness: Readiness = _always_ready,
        bus_connected: Callable[[], bool] = _always_connected,
        sealer: BusSealer | None = None,
    ) -> None:
        self._js = js
        self._sealer = sealer
        self._recorder = recorder
        self._options = options
        self._announce = announce
        self._actors = actors
        self._probe = probe
        self._readiness = readiness
        self._bus_connected = bus_connected
        self._queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=options.fetch_batch * 2)
        # Every fetched message until it is settled, by its (per-delivery) reply subject.
        self._owned: dict[str, _Owned] = {}
        self._fetching = asyncio.Event()
        self._fetching.set()
        # Set while the worker holds messages through an outage: it alone resumes fetching.
        self._holding = False
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
            asyncio.create_task(self._guard(self._keep_alive()), name="timeline-keep-alive"),
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
            await self._fetching.wait()  # cleared while a dependency is down
            try:
                msgs = await self._sub.fetch(
                    self._options.fetch_batch, timeout=self._options.fetch_timeout_seconds
                )
            except TimeoutError:
                # nats-py raises its own TimeoutError (a subclass) or, when the server's
                # request-timeout reply races the client's deadline, a plain asyncio one.
                # While NATS reconnects, fetches only time out: that is an outage too.
                if not self._bus_connected():
                    await self._outage_while_fetching(nats.errors.ConnectionReconnectingError())
                continue
            except Exception as exc:
                if not is_transient(exc):
                    raise
                await self._outage_while_fetching(exc)
                continue
            now = asyncio.get_running_loop().time()
            for msg in msgs:
                self._owned[msg.reply] = _Owned(msg, now)
            for msg in msgs:
                await self._queue.put(msg)  # bounded: backpressure on fetching

    async def _keep_alive(self) -> None:
        """Tell JetStream that messages fetched but not settled are still being worked on.

        Without it a message waiting in the queue, in a slow batch or held through an outage
        would be redelivered after `ack_wait`, spending a delivery attempt each time.
        """
        # A message is touched again at most two periods (half of ack_wait) after the last time.
        period = self._options.ack_wait_seconds / 4
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            due = loop.time() - period
            for owned in list(self._owned.values()):
                if owned.touched <= due:
                    owned.touched = loop.time()
                    try:
                        await owned.msg.in_progress()
                    except Exception as exc:  # noqa: BLE001 - NATS away: its redelivery covers it
                        log.debug("in-progress for %s not sent: %s", owned.msg.subject, exc)

    async def _work(self) -> None:
        while True:
            msgs = [await self._queue.get()]
            # Whatever else is already fetched goes into the same batch: under load batches
            # fill up and share store round trips; when idle, one message goes at once.
            while len(msgs) < self._options.fetch_batch and not self._queue.empty():
                msgs.append(self._queue.get_nowait())
            try:
                with measure.batch(len(msgs)):
                    held = await self.handle_batch(msgs)
                if held.msgs:
                    self._holding = True
                    while held.msgs:
                        assert held.cause is not None
                        await self._recover(held.cause, held=len(held.msgs))
                        held = await self.handle_batch(held.msgs)
                    log.warning("dependencies are back; fetching resumes")
                    self._holding = False
                    await self._resume()
            finally:
                for msg in msgs:
                    self._owned.pop(msg.reply, None)
                    self._queue.task_done()

    async def _outage_while_fetching(self, cause: BaseException) -> None:
        # A 503 may also mean the consumer is gone: the probe then fails for good.
        await self._recover(cause, probe=self._consumer_reachable)
        if not self._holding:
            await self._resume()

    async def _resume(self) -> None:
        self._fetching.set()
        if not self._stopping.is_set():  # shutdown already reported NOT_SERVING
            await self._readiness(True)

    async def _consumer_reachable(self) -> None:
        """The dependencies answer and the durable consumer still exists (raises NotFoundError,
        not a transient error, when it was deleted).
        """
        await self._probe()
        await self._js.consumer_info(INTERACTIONS_STREAM, self._options.durable)

    async def _recover(
        self, cause: BaseException, *, held: int = 0, probe: Probe | None = None
    ) -> None:
        """Pause fetching and report not ready until the dependencies answer the probe.

        The held messages stay in progress meanwhile (`_keep_alive`): their delivery count
        does not climb, and nothing is dead-lettered because a dependency was down.
        """
        self._fetching.clear()
        await self._readiness(False)
        log.warning(
            "a dependency is unavailable (%s); fetching paused, %d message(s) held",
            error_text(cause),
            held,
        )
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential(multiplier=0.2, max=self._options.probe_max_wait_seconds),
            reraise=True,
        ):
            with attempt:
                await (probe or self._probe)()

    async def handle_batch(self, msgs: list[Msg]) -> Held:
        """Record messages; ack, retry later or dead-letter each one, or hold it while a
        dependency is down (returned). Never raises.
        """
        held = Held()
        with batch_span(msgs):
            readable: list[tuple[Msg, interaction_pb2.Interaction]] = []
            for msg in msgs:
                interaction = await self._guarded(msg, self._admit(msg), held)
                if interaction is not None:
                    readable.append((msg, interaction))
            try:
                outcomes = await self._recorder.record_batch(
                    [i for _, i in readable], marks_with_notices=True
                )
            except Exception as exc:
                if not is_transient(exc):
                    log.error(
                        "recording a batch of %d failed: %s",
                        len(readable),
                        error_text(exc),
                        # A store error's traceback would repeat its message, document included.
                        exc_info=not is_store_error(exc),
                    )
                outcomes = [exc] * len(readable)
            recorded: list[tuple[Msg, interaction_pb2.Interaction, Recorded]] = []
            for (msg, interaction), outcome in zip(readable, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    with event_span(msg, interaction, outcome):
                        await self._guarded(
                            msg, self._settle(msg, interaction, outcome, held), held
                        )
                else:
                    recorded.append((msg, interaction, outcome))
            await self._finish(recorded, held)
        return held

    async def _finish(
        self,
        recorded: list[tuple[Msg, interaction_pb2.Interaction, Recorded]],
        held: Held,
    ) -> None:
        """Announce what was recorded, note it as projected and announced (one write), then ack.

        Acked last: a crash before the notices went out leaves the messages to be
        redelivered, and a redelivered event not yet noted as announced is announced then
        (one not yet noted as projected has its profile and case rebuilt from the log first).
        When the notices fail, the events are still noted as projected.
        """
        if not recorded:
            return
        outcomes = [outcome for _, _, outcome in recorded]
        # One span per event, in the event's own trace, around its notice and its ack: the
        # notice carries it on to the gateway's push (services/timeline/consumer_spans.py).
        spans = [start_event_span(msg, i, outcome) for msg, i, outcome in recorded]
        try:
            for msg, _, outcome in recorded:
                measure.stored(msg, outcome)
            unannounced = await self._announced(outcomes, spans)
            if not await self._marked(recorded, unannounced, held):
                return
            if unannounced is None:
                for msg, _, outcome in recorded:
                    measure.announced(msg, outcome)
            elif is_transient(unannounced):
                for msg, _, _ in recorded:
                    held.add(msg, unannounced)
                return
            else:
                # The events are committed: a lost notice is not worth losing them for.
                log.error("could not announce %d event(s)", len(outcomes), exc_info=unannounced)
            for msg, _, _ in recorded:
                await self._guarded(msg, msg.ack(), held)
        finally:
            for span in spans:
                span.end()

    async def _announced(self, outcomes: list[Recorded], spans: list[Span]) -> Exception | None:
        """Publish the notices; what stopped them, if anything."""
        try:
            await self._announce(outcomes, [trace.set_span_in_context(s) for s in spans])
        except Exception as exc:  # noqa: BLE001 - held or logged once the flags are written
            return exc
        return None

    async def _marked(
        self,
        recorded: list[tuple[Msg, interaction_pb2.Interaction, Recorded]],
        unannounced: Exception | None,
        held: Held,
    ) -> bool:
        """Write the recorded events' flags: projected, and announced unless the notices
        failed. False when that write failed: the messages are then held (the store is away)
        or, never acked, redelivered once their ack wait runs out; either way the
        redelivery finds the events stored but not projected, rebuilds and announces them.
        """
        outcomes = [outcome for _, _, outcome in recorded]
        try:
            if unannounced is None:
                await self._recorder.mark_announced(outcomes)
            else:
                await self._recorder.mark_projected(outcomes)
        except Exception as exc:  # noqa: BLE001 - every message of the batch waits for it
            if is_transient(exc):
                for msg, _, _ in recorded:
                    held.add(msg, exc)
            else:
                log.error(
                    "could not mark %d recorded event(s), they will be redelivered: %s",
                    len(recorded),
                    error_text(exc),
                )
            return False
        return True

    async def _guarded(
        self, msg: Msg, step: Awaitable[interaction_pb2.Interaction | None], held: Held
    ) -> interaction_pb2.Interaction | None:
        try:
            return await step
        except Exception as exc:
            if is_transient(exc):
                held.add(msg, exc)  # NATS away while dead-lettering or acking: try again later
                return None
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
        decoded = await self._decoded(msg)
        if decoded is None:
            return None
        interaction, payload = decoded
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
        try:
            self._actors.check(interaction, payload, msg.headers)  # agent actions: signed?
        except ContractViolation as exc:
            await self._dead_letter(msg, str(exc), reason=exc.code)
            return None
        return interaction

    async def _decoded(self, msg: Msg) -> tuple[interaction_pb2.Interaction, bytes] | None:
        """The message's interaction and its bytes, or None once dead-lettered."""
        try:
            payload = self._unsealed(msg)
        except DecryptionFailed as exc:
            # Fails closed: a body that does not open is never guessed at, only kept (sealed)
            # in the dead-letter stream for an operator.
            await self._dead_letter(msg, f"sealed payload: {exc}", reason=Reason.MALFORMED)
            return None
        try:
            interaction = interaction_pb2.Interaction.FromString(payload)
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
        return interaction, payload

    def _unsealed(self, msg: Msg) -> bytes:
        """The message's `Interaction` bytes, opened when ingestion sealed them."""
        if headers.SEALED_KEY not in (msg.headers or {}):
            return msg.data
        if self._sealer is None:
            raise DecryptionFailed("no key provider configured (TSUNAGU_KEY_FILE)")
        # The tenant of the subject (`interactions.<tenant>.<channel>`), which publish
        # permissions vouch for, not the one inside the body.
        tenant = msg.subject.split(".")[1]
        return self._sealer.open(tenant=tenant, data=msg.data, headers=msg.headers or {})

    async def _settle(
        self,
        msg: Msg,
        interaction: interaction_pb2.Interaction,
        outcome: Exception,
        held: Held,
    ) -> None:
        """Hold, dead-letter or redeliver a message whose event failed to record."""
        fault = classify(outcome)
        if fault is Fault.TRANSIENT:
            held.add(msg, outcome)
            return
        if fault is Fault.PERMANENT:
            await self._dead_letter(msg, error_text(outcome), reason=reason_of(outcome))
            return
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
        measure.dead_lettered(reason)

    async def stop(self, grace_seconds: float) -> None:
        """Stop fetching, finish what was fetched within the budget, then cancel."""
        self._stopping.set()
        self._fetching.set()  # a paused pump sees the stop
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
