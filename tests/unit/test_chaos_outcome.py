"""The chaos table's verdict and a follower's excused window: pure logic of `chaos`."""

from __future__ import annotations

import dataclasses

from chaos.followers import IN_FLIGHT_S, Follower
from chaos.outcome import Outcome, table

CLEAN = Outcome(
    label="kill -9 timeline",
    acked=100,
    retries=3,
    unacked=0,
    stored=100,
    duplicated=0,
    lost=0,
    dead_unexpected=0,
    invalid_sent=2,
    invalid_dead=2,
    miscounted=0,
    missed_pushes=0,
    excused_pushes=4,
    back_up_s=1.2,
    ready_s=1.4,
    stored_again_s=1.5,
)


def test_a_scenario_fails_on_any_broken_promise_and_not_on_retries_or_excused_pushes() -> None:
    broken = [
        dataclasses.replace(CLEAN, lost=1),
        dataclasses.replace(CLEAN, duplicated=1),
        dataclasses.replace(CLEAN, dead_unexpected=1),
        dataclasses.replace(CLEAN, miscounted=1),
        dataclasses.replace(CLEAN, missed_pushes=1),
        dataclasses.replace(CLEAN, back_up_s=None),
        dataclasses.replace(CLEAN, ready_s=None),
    ]

    assert not CLEAN.failed
    assert [outcome.failed for outcome in broken] == [True] * len(broken)


def test_the_table_has_a_row_per_fault_and_names_the_failed_ones() -> None:
    lost = dataclasses.replace(CLEAN, label="store down 120 s", lost=7, back_up_s=None)

    lines = table([CLEAN, lost]).splitlines()

    assert lines[0].split()[:6] == ["fault", "acked", "stored", "dup", "lost", "DLQ!"]
    assert lines[2].split()[3:6] == ["100", "100", "0"]
    assert "never" in lines[3].split()
    assert lines[-1] == "FAILED: store down 120 s"


def test_events_stored_while_a_follower_was_disconnected_are_excused() -> None:
    follower = Follower("cus_1")
    follower.gaps.append((100.0 - IN_FLIGHT_S, 105.0))

    assert [follower.excused(t) for t in (98.0, 99.5, 103.0, 105.5)] == [False, True, True, False]
