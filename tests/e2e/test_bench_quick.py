"""Smoke test of `make bench` in quick mode: it runs on its own stack and prints every target.

No figure is asserted against the issue's bounds (benchmarks report, they never fail); only
that each target was measured on real processes and lands in the table and the JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# The table's rows, by the start of their target's name, in the order.
TARGETS = (
    "end-to-end ingest",
    "flat as the store grows",
    "store round trips per attach batch",
    "store commands per event",
    "  CPU per event, whole machine",
    "  same, insights held down",
    "  its store / timeline CPU per event",
    "store CPU per event",
    "timeline CPU per event",
    "live view: ack → push p99",
    "timeline page 3 via cursors",
    "identity: mixed create/attach/merge",
    "identity: merge of two customers",
    "identity: split of two customers",
    "attach path flat as the store grows",
    "export of a",
    "encryption on ingest (seal, open, record)",
    "encryption on timeline reads (profile + page)",
    "encryption on cold reads (data keys not cached)",
    "insights: metric query over",
    "insights: freshness, event ack",
    "voc: V-measure",
    "voc: adjusted Rand index",
    "similar cases: nearest other",
    "voc: topic rebuild",
    "voc: new messages placed",
)


# The insights rows (issue 13) add a seeded read model and freshness samples: about 25 s.
@pytest.mark.timeout(300)
def test_quick_bench_measures_every_target_and_prints_one_table(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    table = run.stdout[run.stdout.index("issue 11 targets") :].splitlines()
    assert table[1].split() == [
        "target",
        "measured",
        "baseline",
        "ratio",
        "issue's",
        "target",
        "met",
    ]
    printed = table[3:]
    assert len(printed) == len(TARGETS)
    for line, target in zip(printed, TARGETS, strict=True):
        assert line.startswith(target), (line, target)
        assert line.rstrip().endswith(("yes", "NO", "—")), line

    result = json.loads(out.read_text())
    assert len(result["targets"]) == len(TARGETS)
    ingest = result["ingest"]
    assert ingest["events"] == 300
    # Counted inside the timeline process and on both processes' CPU clocks (batched, the
    # timeline sends fewer commands than events: a few per batch).
    assert ingest["store_commands_per_event"] > 0
    assert sum(ingest["store_commands"].values()) > 0
    assert any(key.startswith("insert:interactions") for key in ingest["store_commands"])
    # The same load with insights held down, on the same stack.
    alone = result["ingest_without_insights"]
    assert alone["events"] == 300
    assert alone["stored_per_s"] > 0
    assert ingest["cpu_ms_per_event"]["store"] > 0
    assert ingest["cpu_ms_per_event"]["timeline"] > 0
    # Every process of the stack on its own clock, and the whole machine's busy CPU (which
    # includes them all): the ceiling is the rate that would keep every core busy.
    assert {"nats", "ingest-chat", "insights", "load"} <= set(ingest["cpu_ms_per_event"])
    machine = ingest["machine"]
    assert machine["busy_cpu_ms_per_event"] > ingest["cpu_ms_per_event"]["store"]
    assert machine["cpu_ceiling_per_s"] == pytest.approx(
        machine["cores"] * 1000 / machine["busy_cpu_ms_per_event"]
    )
    assert 0 < machine["busy_share"] <= 1.05
    for size in ("1", "16", "64"):
        assert result["attach_path"]["per_batch_size"][size]["round_trips"] >= 1
    # The attach path timed with the store at 100 customers, then at 1,000.
    steps = result["attach_growth"]["steps"]
    assert [s["customers"] for s in steps] == [100, 1000]
    assert all(s["per_s"] > 0 and s["read_ms_per_batch"] > 0 for s in steps)
    loaded = result["live_view"]["push_under_load"]
    assert loaded["background_per_s"] > 50
    assert loaded["acked"] == loaded["submitted"]
    insights = result["insights"]
    assert insights["latency"]["interactions"] == 2000
    assert insights["latency"]["metrics_ms"]["count"] > 0
    assert insights["freshness"]["visible_ms"]["count"] > 0
