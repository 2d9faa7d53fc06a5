"""The harness: the stack with restarts on, followers, load; each fault in turn, then checks."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import nats

from chaos.checks import DeadLetters, Stored, StoreProbe, invalid_interactions, read_dead_letters
from chaos.faults import Fault
from chaos.followers import Follower
from chaos.load import LOAD_CHANNELS, Adapters, Customer, Ledger, adapters, customers, steady
from chaos.outcome import Outcome
from chaos.readiness import Readiness, readiness
from tsunagu.bus.subjects import INTERACTIONS_STREAM
from tsunagu.local.processes import LineSink
from tsunagu.local.restarts import Backoff
from tsunagu.local.stack import LocalStack, StackPorts

TENANT = "chaos"
T = TypeVar("T")
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Options:
    """How hard each scenario pushes: Submits per second, and acknowledged events before the
    fault and again after the process is back (the defaults are `make chaos`'s)."""

    rate: float = 30.0
    events: int = 90


CUSTOMERS_PER_CHANNEL = 2
INVALID_PER_SCENARIO = 2
# Generous deadlines on 2 shared cores: a shortfall is reported once they pass.
RECOVER_WITHIN_S = 120.0
QUIESCE_WITHIN_S = 180.0
SETTLE_WITHIN_S = 30.0
PUSH_GRACE_S = 15.0


async def _until(condition: Callable[[], bool], *, within_s: float) -> bool:
    """Wait for `condition` up to a deadline; whether it held."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def _settled(
    read: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, within_s: float, empty: T
) -> T:
    """Read until `done` holds or the deadline passes; the last successful read."""
    deadline = time.monotonic() + within_s
    last = empty
    while True:
        with contextlib.suppress(Exception):  # the store or NATS may still be coming back
            last = await read()
            if done(last):
                return last
        if time.monotonic() > deadline:
            return last
        await asyncio.sleep(0.5)


@dataclass(slots=True)
class Harness:
    """A running stack under test, with its adapters, followers and direct probes."""

    stack: LocalStack
    load: Adapters
    probe: StoreProbe
    ready: Readiness
    options: Options
    _followers: dict[str, Follower] = field(default_factory=dict, init=False)
    _following: list[asyncio.Task[None]] = field(default_factory=list, init=False)
    _targets: list[Customer] = field(default_factory=list, init=False)
    _seen_dead: set[str] = field(default_factory=set, init=False)
    _scenarios: int = field(default=0, init=False)
    # Invalid event ids differ from run to run: a kept data folder has earlier ones.
    _run: str = field(default_factory=lambda: uuid.uuid4().hex[:8], init=False)

    async def follow(self, targets: Sequence[Customer]) -> None:
        """Create each customer with one event, subscribe to each, wait for a first push."""
        self._targets = list(targets)
        # Dead letters an earlier run left in a kept data folder are not this run's.
        self._seen_dead = set(
            (
                await read_dead_letters(self.stack.nats_url, TENANT, key_file=self.stack.key_file)
            ).others
        )
        ledger = Ledger()
        firsts = [(c, c.interaction(TENANT, "hello")) for c in targets]
        await asyncio.gather(*(self.load.submit(c.channel, i, ledger) for c, i in firsts))
        ids = [i.event_id for _, i in firsts]
        stored = await _settled(
            lambda: self.probe.stored(ids),
            lambda s: len(s.where) == len(ids),
            within_s=QUIESCE_WITHIN_S,
            empty=Stored.nothing(),
        )
        agent = f"Bearer {self.stack.issuer.mint(tenant=TENANT, roles=['agent'])}"
        for customer, event_id in zip(targets, ids, strict=True):
            follower = Follower(stored.where[event_id][0])
            self._followers[follower.customer_id] = follower
            self._following.append(
                asyncio.create_task(follower.follow(self.stack.graphql_url, agent))
            )
            # No protocol message says "subscribed": send until the customer's first push.
            for _ in range(60):
                hello = customer.interaction(TENANT, "hi")
                await self.load.submit(customer.channel, hello, ledger)
                if await _until(follower.live, within_s=2.0):
                    break
            else:
                raise RuntimeError(f"no push for {follower.customer_id} after 60 events")

    async def close(self) -> None:
        for task in self._following:
            task.cancel()
        await asyncio.gather(*self._following, return_exceptions=True)

    async def run(self, fault: Fault) -> Outcome:
        """Load, the fault, more load once it is over; then wait for quiet and check."""
        self._scenarios += 1
        o = self.options
        ledger, stop = Ledger(), asyncio.Event()
        load = asyncio.create_task(
            steady(self.load, TENANT, self._targets, rate=o.rate, stop=stop, ledger=ledger)
        )
        try:
            invalid = await self._send_invalid(self._scenarios)
            await _until(lambda: len(ledger.acked) >= o.events, within_s=RECOVER_WITHIN_S)
            fault_at, started = time.time(), time.monotonic()
            back_up_s: float | None = None
            with contextlib.suppress(TimeoutError):
                back_up_s = await fault.inject(self.stack, within_s=RECOVER_WITHIN_S)
            ready_s = await self._ready_since(started)
            after = len(ledger.acked)
            await _until(lambda: len(ledger.acked) >= after + o.events, within_s=RECOVER_WITHIN_S)
            stop.set()
            await load
        finally:
            load.cancel()  # done already, unless this scenario was cancelled or failed
            await asyncio.gather(load, return_exceptions=True)
        return await self._check(fault, ledger, invalid, fault_at, (back_up_s, ready_s))

    async def _check(
        self,
        fault: Fault,
        ledger: Ledger,
        invalid: set[str],
        fault_at: float,
        recovered: tuple[float | None, float | None],
    ) -> Outcome:
        ids = list(ledger.acked)
        stored = await _settled(
            lambda: self.probe.stored(ids),
            lambda s: s.where.keys() >= set(ids),
            within_s=QUIESCE_WITHIN_S,
            empty=Stored.nothing(),
        )
        miscounted = await _settled(
            self.probe.miscounted, lambda wrong: not wrong, within_s=SETTLE_WITHIN_S, empty=["?"]
        )
        dead = await _settled(
            lambda: read_dead_letters(self.stack.nats_url, TENANT, key_file=self.stack.key_file),
            lambda d: d.invalid >= invalid,
            within_s=SETTLE_WITHIN_S,
            empty=DeadLetters(),
        )
        unexpected = dead.others.keys() - self._seen_dead
        self._seen_dead |= unexpected
        # An event stored on a customer nobody follows went to the wrong customer: missed too.
        nobody = Follower("")
        pushable = [
            e
            for e, (customer, at) in stored.where.items()
            if not self._followers.get(customer, nobody).excused(at)
        ]

        def missed() -> list[str]:
            return [
                e
                for e in pushable
                if e not in self._followers.get(stored.where[e][0], nobody).pushed
            ]

        await _until(lambda: not missed(), within_s=PUSH_GRACE_S)
        after_fault = [at for _, at in stored.where.values() if at >= fault_at]
        lost = sorted(set(ids) - stored.where.keys())
        unpushed = missed()
        examples = (*lost[:3], *sorted(stored.duplicated)[:3], *sorted(unexpected)[:3])
        return Outcome(
            label=fault.label,
            acked=len(ids),
            retries=ledger.retries,
            unacked=len(ledger.unacked),
            stored=len(stored.where.keys() & set(ids)),
            duplicated=len(stored.duplicated),
            lost=len(lost),
            dead_unexpected=len(unexpected),
            invalid_sent=len(invalid),
            invalid_dead=len(dead.invalid & invalid),
            miscounted=len(miscounted),
            missed_pushes=len(unpushed),
            excused_pushes=len(stored.where) - len(pushable),
            back_up_s=recovered[0],
            ready_s=recovered[1],
            stored_again_s=min(after_fault) - fault_at if after_fault else None,
            examples=(*examples, *unpushed[:3]),
        )

    async def _ready_since(self, started: float) -> float | None:
        """Seconds from `started` until every service is ready again (None: not in time).

        The deadline runs from now, once the process is back: an outage may last longer.
        """
        deadline = time.monotonic() + RECOVER_WITHIN_S
        while not await self.ready.all_ready():
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.25)
        return time.monotonic() - started

    async def _send_invalid(self, scenario: int) -> set[str]:
        """Publish invalid events straight to the stream, as a buggy producer could."""
        items = invalid_interactions(TENANT, f"{self._run}-{scenario}", INVALID_PER_SCENARIO)
        nc = await nats.connect(self.stack.nats_url, name="tsunagu-chaos-invalid")
        try:
            js = nc.jetstream()
            for _, subject, payload in items:
                await js.publish(subject, payload, stream=INTERACTIONS_STREAM)
        finally:
            await nc.close()
        return {event_id for event_id, _, _ in items}


@asynccontextmanager
async def harness(data_dir: Path, options: Options, *, sink: LineSink) -> AsyncIterator[Harness]:
    """The whole local stack with restarts on, load adapters, and followers subscribed."""
    async with LocalStack(
        data_dir,
        ports=StackPorts.free(),
        channels=LOAD_CHANNELS,
        tenant_database="chaos",
        sink=sink,
        adapter_tenants=(TENANT,),
        restarts=Backoff(),
    ) as stack:
        tokens = {c: stack.grpc_callers.adapter(c) for c in LOAD_CHANNELS}
        probe = StoreProbe(stack.mongodb_uri, stack.database, TENANT)
        try:
            async with (
                adapters(stack.ingest_addresses, tokens) as load,
                readiness(stack) as ready,
            ):
                running = Harness(stack, load, probe, ready, options)
                try:
                    await running.follow(customers(CUSTOMERS_PER_CHANNEL))
                    yield running
                finally:
                    await running.close()
        finally:
            await probe.close()


async def run_faults(
    faults: Sequence[Fault], options: Options, data_dir: Path, *, sink: LineSink, say: Say
) -> list[Outcome]:
    """Every fault in turn on one stack; one outcome each."""
    outcomes = []
    async with harness(data_dir, options, sink=sink) as running:
        for fault in faults:
            say(f"chaos: {fault.label} ...")
            outcome = await running.run(fault)
            verdict = "FAILED" if outcome.failed else "ok"
            say(
                f"chaos: {fault.label}: {verdict} ({outcome.acked} acknowledged, "
                f"{outcome.stored} stored, {outcome.lost} lost, {outcome.duplicated} duplicated)"
            )
            if outcome.failed and outcome.examples:
                say(f"chaos: {fault.label}: for example {', '.join(outcome.examples)}")
            outcomes.append(outcome)
    return outcomes
