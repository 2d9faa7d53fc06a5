"""Smoke test of `bench.live_view` at tiny sizes: the benchmark code runs and reports.

No time is asserted (benchmarks report, they never fail); only that every measure produced
samples, through the same real processes `make bench` uses.
"""

from __future__ import annotations

from dataclasses import replace

from bench import live_view
from bench.sizes import QUICK_LIVE
from tests.e2e.agent_desk import TENANT
from tsunagu.local.stack import LocalStack

# The bench's own quick sizes, without the load of other customers' traffic (the quick run
# of tests/e2e/test_bench_quick.py measures that).
TINY = replace(QUICK_LIVE, background_rate=0, grace_s=10)


async def test_live_view_bench_measures_pushes_and_pages_at_tiny_sizes(
    stack: LocalStack,
) -> None:
    result = await live_view.measure(stack, TENANT, TINY)

    push = result["push"]
    assert push["submitted"] == push["acked"] == round(TINY.rate * TINY.duration_s)
    assert push["freshness_ms"]["count"] == push["pushed"]
    pings = push["baseline_nats_core_ms"]
    assert pings["count"] + pings["lost"] == TINY.nats_pings
    pages = result["pages"]
    assert pages["seed"]["interactions"] == TINY.seed_count
    assert pages["seed"]["emails"] == TINY.seed_count // 20
    for name in ("first", "deep", "filtered", "small_first"):
        assert pages["graphql_ms"][name]["count"] == TINY.requests, name
    for name in ("first", "deep", "filtered"):
        assert pages["store_ms"][name]["count"] == TINY.requests, name
    assert "push_after_seed" not in result
    assert "push_under_load" not in result
    assert "Submit ack → push" in live_view.report(result)
