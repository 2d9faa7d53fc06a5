"""One scenario's findings, and the table `make chaos` prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one fault did to the events submitted around it.

    Attributes:
        acked: Events acknowledged to the adapters (ACCEPTED or DUPLICATE).
        unacked: Valid events never acknowledged (refused, or retried past the deadline):
            the adapter knows, so they are not lost; shown, never hidden.
        stored: Acknowledged events found in the store.
        duplicated: Acknowledged events with more than one document.
        lost: Acknowledged events with no document once the system had quiesced.
        dead_unexpected: Dead letters of valid events that appeared during the scenario.
        invalid_sent, invalid_dead: Invalid events sent on purpose, and those dead-lettered.
        miscounted: Customers whose counts differ from their log.
        missed_pushes: Stored events of followed customers no subscriber was pushed.
        excused_pushes: Events stored while a subscriber was disconnected (not missed).
        back_up_s: Fault → the process ready again (None: not back in time).
        ready_s: Fault → every service's readiness SERVING again (None: not in time).
        stored_again_s: Fault → the first event stored after it.
        examples: A few event ids behind the failure (lost, duplicated, dead-lettered or
            missed, in that order), to look up in the store, the logs or a trace.
    """

    label: str
    acked: int
    retries: int
    unacked: int
    stored: int
    duplicated: int
    lost: int
    dead_unexpected: int
    invalid_sent: int
    invalid_dead: int
    miscounted: int
    missed_pushes: int
    excused_pushes: int
    back_up_s: float | None
    ready_s: float | None
    stored_again_s: float | None
    examples: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """Whether the scenario broke a promise: the exit code of `make chaos`."""
        return (
            self.back_up_s is None
            or self.ready_s is None
            or self.lost > 0
            or self.duplicated > 0
            or self.dead_unexpected > 0
            or self.miscounted > 0
            or self.missed_pushes > 0
        )


_COLUMNS = (
    ("fault", 20),
    ("acked", 6),
    ("stored", 6),
    ("dup", 4),
    ("lost", 5),
    ("DLQ!", 5),
    ("invalid", 7),
    ("counts!", 7),
    ("missed", 6),
    ("excused", 7),
    ("unacked", 7),
    ("retries", 7),
    ("back s", 6),
    ("ready s", 7),
    ("stored s", 8),
)


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"


def table(outcomes: Sequence[Outcome]) -> str:
    """The findings as a fixed-width table, one row per fault, then a verdict line."""
    header = " ".join(
        f"{name:>{width}}" if i else f"{name:<{width}}" for i, (name, width) in enumerate(_COLUMNS)
    )
    rows = [header, "-" * len(header)]
    for o in outcomes:
        cells = (
            o.label,
            o.acked,
            o.stored,
            o.duplicated,
            o.lost,
            o.dead_unexpected,
            f"{o.invalid_dead}/{o.invalid_sent}",
            o.miscounted,
            o.missed_pushes,
            o.excused_pushes,
            o.unacked,
            o.retries,
            _seconds(o.back_up_s),
            _seconds(o.ready_s),
            _seconds(o.stored_again_s),
        )
        rows.append(
            " ".join(
                f"{cell!s:<{width}}" if i == 0 else f"{cell!s:>{width}}"
                for i, (cell, (_, width)) in enumerate(zip(cells, _COLUMNS, strict=True))
            )
        )
    failed = [o.label for o in outcomes if o.failed]
    rows.append(
        f"FAILED: {', '.join(failed)}" if failed else "all scenarios: nothing lost or duplicated"
    )
    return "\n".join(rows)
