"""How big each measure of `make bench` runs: `--quick`, the default, `--full`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bench.live_view import LiveViewSizes

Mode = Literal["quick", "default", "full"]
_MODES: tuple[Mode, ...] = ("quick", "default", "full")

# Per measure: (quick, default, full). Full is the sizes and takes long (the 200k
# run for flatness most of all); the default finishes in a few minutes.
_TABLE: dict[str, tuple[int, int, int]] = {
    "events": (300, 6_000, 50_000),  # end to end
    "customers": (30, 600, 5_000),
    "batch": (256, 256, 256),  # SubmitBatch
    "window": (60, 1_200, 10_000),  # flatness: first vs last this many events
    "growth_events": (0, 0, 200_000),  # a run of its own for flatness; 0: the run above
    "publishes": (2_000, 20_000, 20_000),  # JetStream baseline
    "inserts": (2_000, 20_000, 50_000),  # insert_many baseline
    "identity_events": (200, 2_000, 10_000),
    "identity_batch": (64, 64, 64),
    "merge_size": (500, 10_000, 10_000),  # interactions per merged customer
    "largest_attach_batch": (64, 256, 256),
    # The attach path with the store at this many customers, then ten times as many.
    "growth_customers": (100, 2_000, 5_000),
    # Timed batches of 64 at each of those sizes (20 swung 0.65x to 1.09x from run to run).
    "growth_batches": (10, 60, 100),
    "voc_messages": (1_000, 10_000, 10_000),  # topic rebuild (bench.voc)
}


@dataclass(frozen=True, slots=True)
class Sizes:
    """One column of the table above."""

    events: int
    customers: int
    batch: int
    window: int
    growth_events: int
    publishes: int
    inserts: int
    identity_events: int
    identity_batch: int
    merge_size: int
    largest_attach_batch: int
    growth_customers: int
    growth_batches: int
    voc_messages: int

    @classmethod
    def of(cls, mode: Mode) -> Sizes:
        column = _MODES.index(mode)
        return cls(**{name: sizes[column] for name, sizes in _TABLE.items()})

    @property
    def attach_sizes(self) -> tuple[int, ...]:
        return tuple(s for s in (1, 16, 64, 256) if s <= self.largest_attach_batch)


# The live view's quick sizes; the default and full ones are LiveViewSizes' own defaults.
QUICK_LIVE = LiveViewSizes(
    rate=20,
    duration_s=2,
    customers=2,
    grace_s=5,
    nats_pings=100,
    seed_count=200,
    small_count=3,
    requests=3,
    deep_pages=3,
    push_after_seed=False,
    background_rate=100,
)
