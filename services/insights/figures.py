"""Service metrics over case facts: one table of definitions, grouping, drill-down and CSV.

Each figure is a count, a rate (numerator cases of denominator cases) or a mean of one value
per case; the cases behind a figure are exactly those its definition counts, so a figure can
always be followed to its cases and exported (one CSV row per case).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import fmean

from services.insights.calendar import Period, TenantCalendar
from services.insights.facts import CaseFacts
from tsunagu.v1 import interaction_pb2 as ipb

HOUR = 3600.0
DAY = 24 * HOUR


class GroupBy(StrEnum):
    NONE = "none"
    AGENT = "agent"
    CHANNEL = "channel"
    QUEUE = "queue"
    TOPIC = "topic"
    BUSINESS_HOURS = "business_hours"


@dataclass(frozen=True, slots=True)
class Targets:
    """A tenant's service-level targets, in seconds."""

    first_response: float = HOUR
    resolution: float = 2 * DAY


@dataclass(frozen=True, slots=True)
class Context:
    """What a figure needs besides the case: the time now, identities and other contacts."""

    now: float
    targets: Targets
    # Resolved identity of every customer id seen (merged ids map to their survivor).
    identity: Callable[[str], str]
    # Every contact time of each identity, across all its cases and channels, sorted.
    contacts_of: Mapping[str, Sequence[float]]


Predicate = Callable[[CaseFacts, Context], bool]
Value = Callable[[CaseFacts, Context], float | None]


def _always(_c: CaseFacts, _x: Context) -> bool:
    return True


def _resolved(c: CaseFacts, _x: Context) -> bool:
    return c.resolved


def _ever_resolved(c: CaseFacts, _x: Context) -> bool:
    return c.resolved or c.reopen_count > 0


def _repeat_within(seconds: float) -> Predicate:
    def repeat(c: CaseFacts, x: Context) -> bool:
        if c.resolved_at is None:
            return False
        times = x.contacts_of.get(x.identity(c.customer_id), ())
        return any(c.resolved_at < t <= c.resolved_at + seconds for t in times)

    return repeat


def overdue(c: CaseFacts, x: Context) -> bool:
    return any((f.done_at if f.done_at is not None else x.now) > f.due_at for f in c.follow_ups)


def sla_breached(c: CaseFacts, x: Context) -> bool:
    t = x.targets
    first = c.first_response_seconds
    if first is None and not c.resolved:
        first = x.now - c.opened_at if x.now - c.opened_at > t.first_response else None
    resolution = c.resolution_seconds
    if resolution is None and not c.resolved:
        resolution = x.now - c.opened_at
    return (first is not None and first > t.first_response) or (
        resolution is not None and resolution > t.resolution
    )


def _cancellation(c: CaseFacts, _x: Context) -> bool:
    return c.cancellation_reason != 0


def _decided(c: CaseFacts, _x: Context) -> bool:
    return c.cancellation_outcome in (
        ipb.CANCELLATION_OUTCOME_RETAINED,
        ipb.CANCELLATION_OUTCOME_CANCELLED,
    )


@dataclass(frozen=True, slots=True)
class Figure:
    """One metric: `counts` of `of` (a rate), a `mean` of a value, or a plain count."""

    name: str
    of: Predicate = _always
    counts: Predicate | None = None
    mean: Value | None = None

    def cases(self, cases: Iterable[CaseFacts], x: Context) -> list[CaseFacts]:
        """The cases behind the figure: its numerator, or the cases its mean averages."""
        base = [c for c in cases if self.of(c, x)]
        if self.mean is not None:
            return [c for c in base if self.mean(c, x) is not None]
        if self.counts is not None:
            return [c for c in base if self.counts(c, x)]
        return base

    def value(self, cases: Sequence[CaseFacts], x: Context) -> float | None:
        base = [c for c in cases if self.of(c, x)]
        if self.mean is not None:
            values = [v for c in base if (v := self.mean(c, x)) is not None]
            return fmean(values) if values else None
        if self.counts is not None:
            return sum(1 for c in base if self.counts(c, x)) / len(base) if base else None
        return float(len(base))


def _avg_response(c: CaseFacts, _x: Context) -> float | None:
    return fmean(c.response_seconds) if c.response_seconds else None


FIGURES: tuple[Figure, ...] = (
    Figure("cases"),
    Figure("first_response_seconds", mean=lambda c, _x: c.first_response_seconds),
    Figure("average_response_seconds", mean=_avg_response),
    Figure("resolution_seconds", mean=lambda c, _x: c.resolution_seconds),
    Figure("contacts_per_case", mean=lambda c, _x: float(c.contacts)),
    Figure(
        "first_contact_resolution_rate",
        of=_resolved,
        counts=lambda c, _x: c.first_contact_resolution,
    ),
    Figure("reopen_rate", of=_ever_resolved, counts=lambda c, _x: c.reopen_count > 0),
    Figure("repeat_contact_72h_rate", of=_ever_resolved, counts=_repeat_within(3 * DAY)),
    Figure("repeat_contact_7d_rate", of=_ever_resolved, counts=_repeat_within(7 * DAY)),
    Figure("handoff_rate", counts=lambda c, _x: c.handoff),
    Figure("escalation_rate", counts=lambda c, _x: c.escalated),
    Figure("transfer_rate", counts=lambda c, _x: c.transferred),
    Figure("overdue_follow_ups", of=overdue),
    Figure("sla_breaches", of=sla_breached),
    Figure("csat_mean", mean=lambda c, _x: float(c.csat_score) if c.csat_score else None),
    Figure(
        "csat_top2_share", of=lambda c, _x: c.csat_score > 0, counts=lambda c, _x: c.csat_score >= 4
    ),
    Figure("csat_response_rate", of=_resolved, counts=lambda c, _x: c.csat_score > 0),
    Figure("csat_comments", of=lambda c, _x: c.csat_comment),
    Figure("cancellation_requests", of=_cancellation),
    Figure(
        "retention_rate",
        of=_decided,
        counts=lambda c, _x: c.cancellation_outcome == ipb.CANCELLATION_OUTCOME_RETAINED,
    ),
)
FIGURES_BY_NAME = {f.name: f for f in FIGURES}


@dataclass(frozen=True, slots=True)
class Row:
    """The figures of one group in one period; `contacts` and `unique_customers` apart."""

    period: str
    group: str
    contacts: int
    unique_customers: int
    values: dict[str, float | None]
    cancellations_by_reason: dict[str, int]


def group_key(c: CaseFacts, by: GroupBy, calendar: TenantCalendar) -> str:
    """The group a case falls in (empty values grouped as "")."""
    if by is GroupBy.AGENT:
        return c.agent
    if by is GroupBy.CHANNEL:
        return (
            ipb.Channel.Name(ipb.Channel.ValueType(c.channel)).removeprefix("CHANNEL_").lower()
            if c.channel
            else ""
        )
    if by is GroupBy.QUEUE:
        return c.queue
    if by is GroupBy.TOPIC:
        return c.topic
    if by is GroupBy.BUSINESS_HOURS:
        return "in" if calendar.in_business_hours(c.opened_at) else "out"
    return ""


def reason_name(reason: int) -> str:
    return (
        ipb.CancellationReason.Name(ipb.CancellationReason.ValueType(reason))
        .removeprefix("CANCELLATION_REASON_")
        .lower()
    )


def grouped(
    cases: Iterable[CaseFacts], *, period: Period, by: GroupBy, calendar: TenantCalendar
) -> dict[tuple[str, str], list[CaseFacts]]:
    groups: dict[tuple[str, str], list[CaseFacts]] = defaultdict(list)
    for c in cases:
        groups[(calendar.period_start(c.opened_at, period), group_key(c, by, calendar))].append(c)
    return groups


def rows(
    cases: Iterable[CaseFacts],
    x: Context,
    *,
    period: Period,
    by: GroupBy,
    calendar: TenantCalendar,
) -> list[Row]:
    """Every figure per (period, group), in period then group order."""
    out = []
    for (start, key), members in sorted(
        grouped(cases, period=period, by=by, calendar=calendar).items()
    ):
        reasons: dict[str, int] = defaultdict(int)
        for c in members:
            if c.cancellation_reason:
                reasons[reason_name(c.cancellation_reason)] += 1
        out.append(
            Row(
                period=start,
                group=key,
                contacts=sum(c.contacts for c in members),
                unique_customers=len({x.identity(c.customer_id) for c in members}),
                values={f.name: f.value(members, x) for f in FIGURES},
                cancellations_by_reason=dict(sorted(reasons.items())),
            )
        )
    return out


CSV_COLUMNS = (
    "case_id",
    "customer_id",
    "opened_at",
    "channel",
    "agent",
    "queue",
    "topic",
    "contacts",
    "first_response_seconds",
    "resolution_seconds",
    "reopen_count",
    "resolved",
    "csat_score",
    "cancellation_reason",
    "cancellation_outcome",
)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs a cell starting with these as a formula (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(cases: Iterable[CaseFacts], x: Context, calendar: TenantCalendar) -> str:
    """One row per case, with the identity the figures counted it under."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in cases:
        writer.writerow(
            _cell(v)
            for v in (
                c.case_id,
                x.identity(c.customer_id),
                calendar.local(c.opened_at).isoformat(),
                group_key(c, GroupBy.CHANNEL, calendar),
                c.agent,
                c.queue,
                c.topic,
                c.contacts,
                c.first_response_seconds,
                c.resolution_seconds,
                c.reopen_count,
                c.resolved,
                c.csat_score or None,
                reason_name(c.cancellation_reason) if c.cancellation_reason else None,
                ipb.CancellationOutcome.Name(
                    ipb.CancellationOutcome.ValueType(c.cancellation_outcome)
                )
                .removeprefix("CANCELLATION_OUTCOME_")
                .lower()
                if c.cancellation_outcome
                else None,
            )
        )
    return buffer.getvalue()
