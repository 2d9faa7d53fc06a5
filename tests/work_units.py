"""How `make test` shares the suite between pytest-xdist workers: whole stacks and modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from xdist.scheduler import LoadScopeScheduling

if TYPE_CHECKING:
    from xdist.remote import Producer

# The order work is handed out in: the browser tests first (their stack, with the demo data
# and Chromium, starts once, in one worker, while the other worker takes the rest), then the
# e2e modules (the longest: chaos and bench run their own stacks), the integration modules,
# unit modules last to fill the gaps.
TIERS = ("browser", "e2e", "integration", "unit")
# Tiers run as one unit, in one worker. Not e2e: its session stack starts in a few seconds, so
# a second one in the other worker costs less than running chaos and bench one after another.
_STACK_TIERS = frozenset({"browser"})
# Modules that each start a whole stack of their own and load it hard (chaos kills its
# processes, bench saturates it): one unit, so they never run at the same time.
_HEAVY = frozenset({"tests/e2e/test_chaos.py", "tests/e2e/test_bench_quick.py"})


def tier(path: str) -> str:
    """The tier of a test file given relative to the repository (`tests/<tier>/...`)."""
    parts = path.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" and parts[1] in TIERS else ""


def work_unit(nodeid: str) -> str:
    """What one worker runs as a whole: the browser tier, the heavy e2e modules, else a module.

    A module stays in one worker so its module-scoped servers start once.
    """
    path = nodeid.split("::", 1)[0]
    if path in _HEAVY:
        return "tests/e2e (own stacks)"
    found = tier(path)
    return f"tests/{found}" if found in _STACK_TIERS else path


def in_handout_order(items: list[pytest.Item]) -> None:
    """Sort `items` (stably) by tier, in `TIERS` order, as the scheduler hands them out."""
    rank = {name: n for n, name in enumerate(TIERS)}
    items.sort(key=lambda item: rank.get(tier(item.nodeid), len(TIERS)))


class StackScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no types
    """xdist's `loadfile` distribution, with the browser tier as one file."""

    def __init__(self, config: pytest.Config, log: Producer | None = None) -> None:
        super().__init__(config, log)
        # Hand work out in collection order (sorted by `in_handout_order`), not by test count.
        config.option.loadscopereorder = False

    def _split_scope(self, nodeid: str) -> str:
        return work_unit(nodeid)
