"""Per-principal rate limits: token buckets by key, with idle buckets forgotten.

A small in-process bucket rather than a library: ``limits`` counts fixed or moving windows
(no burst separate from the rate) and reads the wall clock inside, ``aiolimiter`` makes
callers wait instead of refusing them with a ``Retry-After``, and ``token-bucket`` keeps
every key forever. What is needed here is one refill formula, the exact wait until the
next token, an injectable clock for tests, and a bound on the keys kept.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from gateway.errors import ErrorCode, GatewayError

# Refill arithmetic in floats: a client that waited exactly the advertised seconds must
# not be refused over a rounding error.
_ONE_TOKEN = 1 - 1e-9

Clock = Callable[[], float]
"""Seconds from any fixed point (``time.monotonic``); tests pass a clock they move."""


@dataclass(frozen=True)
class Rate:
    """A budget: ``burst`` requests at once, refilled at ``per_minute`` requests a minute."""

    per_minute: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ValueError("a rate needs a positive refill and a burst of at least 1")

    @property
    def refill_seconds(self) -> float:
        """Seconds one token takes to come back."""
        return 60.0 / self.per_minute

    @property
    def full_after_seconds(self) -> float:
        """Seconds an emptied bucket takes to be full again: an idle bucket is then forgotten."""
        return self.burst * self.refill_seconds


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class TokenBuckets:
    """One token bucket per key (a principal, a client address), all of one ``Rate``.

    A bucket left alone until it is full again is indistinguishable from a new one, so it
    is dropped: the keys kept are those active within the last ``full_after_seconds``.
    Buckets are kept in order of last use, which makes that sweep cheap. ``max_keys`` bounds
    memory even under a flood of fresh keys (random addresses): past it the least recently
    used bucket goes, at worst handing its owner a fresh burst early.
    """

    def __init__(self, rate: Rate, *, clock: Clock = time.monotonic, max_keys: int = 100_000):
        self.rate = rate
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        """The keys currently remembered."""
        return len(self._buckets)

    def take(self, key: Hashable) -> float:
        """Take one token from ``key``'s bucket if it has one.

        Args:
            key: Whose budget to charge.

        Returns:
            0 when the token was taken; otherwise the seconds until one will be there
            (nothing was taken).
        """
        now = self._clock()
        self._forget_idle(now)
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.rate.burst), now)
            if len(self._buckets) >= self._max_keys:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = self._level(bucket, now)
            bucket.updated = now
        self._buckets[key] = bucket  # the most recently used last
        if bucket.tokens >= _ONE_TOKEN:
            bucket.tokens = max(0.0, bucket.tokens - 1)
            return 0.0
        return self._wait(bucket.tokens)

    def wait(self, key: Hashable) -> float:
        """Seconds until ``key`` has a token again (0 if it has one now); takes nothing."""
        now = self._clock()
        self._forget_idle(now)
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else self._wait(self._level(bucket, now))

    def _level(self, bucket: _Bucket, now: float) -> float:
        gained = (now - bucket.updated) / self.rate.refill_seconds
        return min(float(self.rate.burst), bucket.tokens + gained)

    def _wait(self, tokens: float) -> float:
        return 0.0 if tokens >= _ONE_TOKEN else (1 - tokens) * self.rate.refill_seconds

    def forget_idle(self) -> None:
        """Drop the buckets that are full again (``take`` and ``wait`` do it as they go)."""
        self._forget_idle(self._clock())

    def _forget_idle(self, now: float) -> None:
        full_after = self.rate.full_after_seconds
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if now - oldest.updated < full_after:
                return
            del self._buckets[key]


class RateLimited(GatewayError):
    """Over a rate limit: nothing was executed; retry after ``retry_after`` whole seconds."""

    def __init__(self, what: str, wait_seconds: float) -> None:
        # Rounded up: a client retrying after the advertised seconds must find a token.
        self.retry_after = max(1, math.ceil(wait_seconds))
        super().__init__(
            ErrorCode.RATE_LIMITED,
            f"Too many {what}; retry after {self.retry_after} seconds.",
        )
        self.extensions["retryAfter"] = self.retry_after


class RateLimits:
    """The gateway's budgets: per principal for operations, per address for failed logins.

    Queries (and subscriptions) and mutations have separate budgets: a mutation publishes
    an event and holds its request for the read-your-writes wait, so it gets fewer.
    Requests that fail authentication are counted per client address; once an address has
    spent its budget, its requests are refused before their token is even looked at, which
    is what makes guessing tokens slow.
    """

    def __init__(
        self,
        *,
        queries: Rate,
        mutations: Rate,
        failed_authentications: Rate,
        clock: Clock = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._queries = TokenBuckets(queries, clock=clock, max_keys=max_keys)
        self._mutations = TokenBuckets(mutations, clock=clock, max_keys=max_keys)
        self._failures = TokenBuckets(failed_authentications, clock=clock, max_keys=max_keys)
        self._all = (self._queries, self._mutations, self._failures)

    @property
    def remembered(self) -> int:
        """Buckets held in memory across the budgets (bounded; see ``TokenBuckets``)."""
        return sum(map(len, self._all))

    def admit(self, *, tenant: str, subject: str, mutation: bool) -> None:
        """Charge one operation to the principal's budget.

        Raises:
            RateLimited: The budget is spent; nothing was charged.
        """
        self._forget_idle()
        buckets, what = (self._mutations, "mutations") if mutation else (self._queries, "requests")
        wait = buckets.take((tenant, subject))
        if wait:
            raise RateLimited(what, wait)

    def check_address(self, address: str) -> None:
        """Refuse a client address that has failed authentication too often.

        Raises:
            RateLimited: The address must wait before presenting credentials again.
        """
        self._forget_idle()
        wait = self._failures.wait(address)
        if wait:
            raise RateLimited("failed authentications from your address", wait)

    def failed_authentication(self, address: str) -> None:
        """Charge one failed authentication to a client address."""
        self._failures.take(address)

    def _forget_idle(self) -> None:
        # Every budget, not just the one used: one that is no longer used must shrink too.
        for buckets in self._all:
            buckets.forget_idle()
