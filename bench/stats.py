"""Percentiles and millisecond summaries of measured durations."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q` quantile (0..1) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Count, p50/p95/p99, min and max of durations in seconds, reported in milliseconds."""
    if not seconds:
        return {"count": 0}
    return {
        "count": len(seconds),
        "p50": 1000 * statistics.median(seconds),
        "p95": 1000 * percentile(seconds, 0.95),
        "p99": 1000 * percentile(seconds, 0.99),
        "max": 1000 * max(seconds),
        "min": 1000 * min(seconds),
    }
