"""The one optimistic-write retry: read again on a lost race, give up after the budget."""

from __future__ import annotations

import pytest

from services.timeline.errors import ConcurrentUpdateError, ResolutionConflictError
from services.timeline.retry import CONFLICT, MAX_ATTEMPTS, Lost, retry_on_conflict


class Writer:
    """Loses `losses` races, then writes."""

    def __init__(self, losses: int) -> None:
        self.losses = losses
        self.attempts = 0

    async def __call__(self) -> str | Lost:
        self.attempts += 1
        return CONFLICT if self.attempts <= self.losses else "written"


async def test_a_lost_race_is_read_and_written_again() -> None:
    writer = Writer(losses=MAX_ATTEMPTS - 1)
    assert await retry_on_conflict(writer, what="customer c1") == "written"
    assert writer.attempts == MAX_ATTEMPTS


async def test_losing_every_round_of_the_budget_raises_the_given_error() -> None:
    writer = Writer(losses=MAX_ATTEMPTS)
    with pytest.raises(ResolutionConflictError, match="identifiers of e1 kept changing"):
        await retry_on_conflict(writer, what="identifiers of e1", error=ResolutionConflictError)
    assert writer.attempts == MAX_ATTEMPTS


async def test_a_failure_is_not_retried() -> None:
    attempts = 0

    async def failing() -> str | Lost:
        nonlocal attempts
        attempts += 1
        raise ConcurrentUpdateError("merged into another customer meanwhile")

    with pytest.raises(ConcurrentUpdateError, match="meanwhile"):
        await retry_on_conflict(failing, what="customer c1")
    assert attempts == 1


async def test_a_budget_of_one_attempt_gives_up_after_it_and_a_later_win_is_returned() -> None:
    once = Writer(losses=1)
    with pytest.raises(ConcurrentUpdateError, match="customer c1 kept changing"):
        await retry_on_conflict(once, what="customer c1", attempts=1)
    assert once.attempts == 1
    second = Writer(losses=1)
    assert await retry_on_conflict(second, what="customer c1", attempts=2) == "written"
    assert second.attempts == 2
