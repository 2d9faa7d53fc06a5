"""How `make test` shares the suite between xdist workers: browser tests together, else modules."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest

from tests.work_units import in_handout_order, tier, work_unit


def test_every_browser_test_is_one_unit_so_its_stack_starts_once() -> None:
    units = {
        work_unit("tests/browser/test_agent_console.py::test_agent_screen_pops"),
        work_unit("tests/browser/test_reconnect.py::test_live_timeline_resubscribes"),
        work_unit("tests/browser/test_console_views.py::test_x[param::with@odd]"),
    }
    assert units == {"tests/browser"}


def test_chaos_and_the_quick_bench_never_run_at_the_same_time() -> None:
    assert work_unit("tests/e2e/test_chaos.py::test_no_event_lost") == work_unit(
        "tests/e2e/test_bench_quick.py::test_quick_bench"
    )
    assert work_unit("tests/e2e/test_chaos.py::t") != work_unit("tests/e2e/test_metrics.py::t")


def test_other_tests_are_shared_out_by_module() -> None:
    modules = {
        "tests/e2e/test_metrics.py::test_gateway_times": "tests/e2e/test_metrics.py",
        "tests/integration/test_cases.py::test_a[x::y]": "tests/integration/test_cases.py",
        "tests/unit/test_masking.py::Test::test_b": "tests/unit/test_masking.py",
        "tests/test_top_level.py::test_c": "tests/test_top_level.py",
    }
    assert {nodeid: work_unit(nodeid) for nodeid in modules} == modules


def test_tiers_are_read_from_the_path_only() -> None:
    assert [
        tier(path)
        for path in (
            "tests/browser/test_x.py",
            "tests/e2e/test_x.py",
            "tests/integration/test_x.py",
            "tests/unit/test_x.py",
            "tests/test_x.py",
            "other/unit/test_x.py",
        )
    ] == ["browser", "e2e", "integration", "unit", "", ""]


def test_browser_tests_are_handed_out_first_and_unit_tests_last_each_in_collection_order() -> None:
    collected = [
        "tests/unit/test_b.py::t1",
        "tests/integration/test_a.py::t1",
        "tests/unit/test_a.py::t1",
        "tests/e2e/test_a.py::t1",
        "tests/browser/test_a.py::t1",
        "tests/integration/test_a.py::t2",
    ]
    items = [cast("pytest.Item", SimpleNamespace(nodeid=nodeid)) for nodeid in collected]

    in_handout_order(items)

    assert [item.nodeid for item in items] == [
        "tests/browser/test_a.py::t1",
        "tests/e2e/test_a.py::t1",
        "tests/integration/test_a.py::t1",
        "tests/integration/test_a.py::t2",
        "tests/unit/test_b.py::t1",
        "tests/unit/test_a.py::t1",
    ]
