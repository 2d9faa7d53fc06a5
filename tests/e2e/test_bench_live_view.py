"""Smoke test of `bench.live_view` at tiny sizes: the benchmark code runs and reports.

No time is asserted (benchmarks report, they never fail); only that every measure produced
samples, through the same real processes `make bench` uses.
"""

from __future__ import annotations

from bench import live_view
from tests.e2e.agent_desk import TENANT
from tsunagu.local.stack import LocalStack

TINY = live_view.LiveViewSizes(
    rate=20,
    duration_s=0.5,
    customers=2,
    grace_s=10,
    nats_pings=20,
    seed_count=60,
    small_count=3,
    seed_batch=20,
    requests=2,
    deep_pages=2,
    push_after_seed=False,
    background_rate=0,  # tests/e2e/test_bench_quick.py runs the load with other traffic
)


async def test_live_view_bench_measures_pushes_and_pages_at_tiny_sizes(
    stack: LocalStack,
) -> None:
    result = await live_view.measure(stack, TENANT, TINY)

    push = result["push"]
    assert push["submitted"] == push["acked"] == 10
    assert push["freshness_ms"]["count"] == push["pushed"]
    assert push["baseline_nats_core_ms"]["count"] == 20
    pages = result["pages"]
    assert pages["seed"]["interactions"] == 60
    assert pages["seed"]["emails"] == 3
    for name in ("first", "deep", "filtered", "small_first"):
        assert pages["graphql_ms"][name]["count"] == 2, name
    for name in ("first", "deep", "filtered"):
        assert pages["store_ms"][name]["count"] == 2, name
    assert "push_after_seed" not in result
    assert "push_under_load" not in result
    assert "Submit ack → push" in live_view.report(result)
