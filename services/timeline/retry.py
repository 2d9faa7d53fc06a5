"""The one way the timeline retries an optimistic write that lost a race (tenacity)."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Final, Literal, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt

from services.timeline.errors import ConcurrentUpdateError

# No lock is held across awaits: a version check decides races and the loser reads again.
# Eight rounds in a row lost means something keeps writing; the event is redelivered later.
MAX_ATTEMPTS = 8


class Race(enum.Enum):
    LOST = enum.auto()


CONFLICT: Final = Race.LOST
"""What an attempt returns when another writer got there first (read again and retry)."""
Lost = Literal[Race.LOST]

_T = TypeVar("_T")


def _lost(result: object) -> bool:
    return result is CONFLICT


def _gave_up(_state: RetryCallState) -> Race:
    return CONFLICT


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[_T | Lost]],
    *,
    what: str,
    error: type[ConcurrentUpdateError] = ConcurrentUpdateError,
    attempts: int = MAX_ATTEMPTS,
) -> _T:
    """Run `attempt` (read, decide, version-checked write) until it does not return CONFLICT.

    Raises:
        ConcurrentUpdateError: (or `error`) `what` kept changing for `attempts` rounds.
    """
    # Almost every attempt wins: the first runs without tenacity's machinery (per attempt it
    # cost more than the attempt itself when the batch hands it what it read).
    result: _T | Lost = await attempt()
    if result is CONFLICT and attempts > 1:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts - 1),
            retry=retry_if_result(_lost),
            retry_error_callback=_gave_up,
        )
        result = await retrying(attempt)
    if result is CONFLICT:
        raise error(f"{what} kept changing")
    return result
