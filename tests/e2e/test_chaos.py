"""`make chaos --short` in `make test`: processes killed, the store down, nothing lost or doubled.

Its own stack (with restarts on): the faults kill processes the session's stack must keep.
The rest of `make chaos` (every ingest, the gateway and the store killed, NATS and the store
restarted, the store down for two minutes) runs outside the suite (docs/operations.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chaos import faults
from chaos.harness import INVALID_PER_SCENARIO, Options, run_faults
from tests.conftest import _quiet_sink

log = logging.getLogger(__name__)

# Small and slow enough for 2 shared cores; deadlines stay generous (a shortfall is a finding).
SHORT = Options(rate=20, events=60)


@pytest.mark.timeout(600)
async def test_no_acknowledged_event_is_lost_or_duplicated_when_processes_die_or_the_store_is_down(
    tmp_path: Path,
) -> None:
    outcomes = await run_faults(faults.short(), SHORT, tmp_path, sink=_quiet_sink, say=log.info)

    assert [o.label for o in outcomes] == [
        "kill -9 timeline",
        "kill -9 ingest-chat",
        "kill -9 nats",
        "store down 10 s",
    ]
    findings = {
        o.label: {
            "back": o.back_up_s is not None,
            "ready": o.ready_s is not None,
            "lost": o.lost,
            "duplicated": o.duplicated,
            "unacked": o.unacked,
            "dead_unexpected": o.dead_unexpected,
            "invalid_dead": o.invalid_dead,
            "miscounted": o.miscounted,
        }
        for o in outcomes
    }
    clean = {
        "back": True,
        "ready": True,
        "lost": 0,
        "duplicated": 0,
        "unacked": 0,
        "dead_unexpected": 0,
        # The dead letters are read: the invalid events sent on purpose are found there.
        "invalid_dead": INVALID_PER_SCENARIO,
        "miscounted": 0,
    }
    assert findings == dict.fromkeys(findings, clean)
    # Load ran on both sides of each fault and everything acknowledged was found.
    assert [o.acked >= 2 * SHORT.events for o in outcomes] == [True] * len(outcomes)
    assert [o.stored == o.acked for o in outcomes] == [True] * len(outcomes)
    # Across the NATS fault the gateway's followers catch up from the notice capture: every
    # stored event of a followed customer was pushed (core NATS alone misses some).
    assert {o.label: o.missed_pushes for o in outcomes}["kill -9 nats"] == 0
