"""Answers metric and at-risk questions from the read model (no gRPC, no NATS here)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from services.insights.calendar import Period, TenantCalendar
from services.insights.case_index import CaseIndex
from services.insights.facts import CaseFacts
from services.insights.figures import (
    DAY,
    FIGURES_BY_NAME,
    Context,
    GroupBy,
    Row,
    Targets,
    grouped,
    rows,
)
from services.insights.risk import LOOKBACK, AtRisk, customers_at_risk
from services.insights.store import InsightsStore
from services.insights.text import clean
from services.insights.topics import Topic
from services.insights.voice import Voices

# Repeat contact looks this far past a resolution, so the query reads that much further.
_REPEAT_HORIZON = 7 * DAY


WEEK = 7 * DAY
# A week with fewer messages is no spike, however quiet the week before was.
SPIKE_FLOOR = 5


@dataclass(frozen=True, slots=True)
class TopicFigures:
    """A topic with its volume, trend and the figures of its cases."""

    topic: Topic
    examples: list[tuple[str, str]]
    messages: int
    this_week: int
    last_week: int
    spike: bool
    cases: int
    values: dict[str, float | None]


class UnknownFigure(ValueError):
    """The figure named in a drill-down is not one of FIGURES."""


@dataclass(frozen=True, slots=True)
class MetricsQuery:
    tenant: str
    since: float
    until: float
    period: Period = Period.ALL
    by: GroupBy = GroupBy.NONE


class MetricsReader:
    """Figures, the cases behind them, and customers at risk, for one tenant at a time."""

    def __init__(
        self,
        store: InsightsStore,
        *,
        index: CaseIndex,
        voices: Voices | None = None,
        calendar_for: Callable[[str], TenantCalendar],
        targets_for: Callable[[str], Targets],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._index = index
        self._voices = voices
        self._calendar_for = calendar_for
        self._targets_for = targets_for
        self._clock = clock

    async def _context(self, tenant: str, cases: Iterable[CaseFacts]) -> Context:
        aliases = await self._store.aliases(tenant)

        def identity(customer: str) -> str:
            return aliases.get(customer, customer)

        contacts: dict[str, list[float]] = defaultdict(list)
        for c in cases:
            contacts[identity(c.customer_id)].extend(c.contact_times)
        return Context(
            now=self._clock(),
            targets=self._targets_for(tenant),
            identity=identity,
            contacts_of={k: sorted(v) for k, v in contacts.items()},
        )

    async def _topics(self, tenant: str, cases: Iterable[CaseFacts]) -> None:
        # A case's topic is that of its first message: it changes with rebuilds and merges,
        # so it is looked up when asked, not folded into the facts.
        if self._voices is None:
            return
        topics = await self._voices.case_topics(tenant)
        for c in cases:
            c.topic = topics.get(c.case_id, "")

    async def _load(self, q: MetricsQuery) -> tuple[list[CaseFacts], Context]:
        horizon = q.until + _REPEAT_HORIZON
        around = sorted(
            (c for c in await self._index.cases(q.tenant) if q.since <= c.opened_at < horizon),
            key=lambda c: (c.opened_at, c.case_id),
        )
        await self._topics(q.tenant, around)
        x = await self._context(q.tenant, around)
        return [c for c in around if c.opened_at < q.until], x

    async def figures(self, q: MetricsQuery) -> list[Row]:
        cases, x = await self._load(q)
        return rows(cases, x, period=q.period, by=q.by, calendar=self._calendar_for(q.tenant))

    async def figure_cases(
        self, q: MetricsQuery, *, figure: str, period: str, group: str
    ) -> tuple[list[CaseFacts], Context]:
        """The cases behind `figure` in the row (`period`, `group`); all the row's if no figure.

        Raises:
            UnknownFigure: `figure` names no figure.
        """
        if figure and figure not in FIGURES_BY_NAME:
            raise UnknownFigure(figure)
        cases, x = await self._load(q)
        members = grouped(
            cases, period=q.period, by=q.by, calendar=self._calendar_for(q.tenant)
        ).get((period, group), [])
        return (FIGURES_BY_NAME[figure].cases(members, x) if figure else members), x

    def calendar(self, tenant: str) -> TenantCalendar:
        return self._calendar_for(tenant)

    async def at_risk(self, tenant: str, *, limit: int) -> list[AtRisk]:
        active_since = self._clock() - LOOKBACK
        recent = [c for c in await self._index.cases(tenant) if c.last_event_at >= active_since]
        await self._topics(tenant, recent)
        x = await self._context(tenant, recent)
        return customers_at_risk(recent, x, identity=x.identity, limit=limit)

    async def voc_topics(
        self, tenant: str, *, since: float, until: float
    ) -> tuple[list[TopicFigures], int]:
        """The tenant's topics, largest first, with their figures; and the unplaced count."""
        if self._voices is None:
            return [], 0
        model = await self._voices.model(tenant)
        times = await self._voices.message_times(tenant)
        cases, x = await self._load(MetricsQuery(tenant, since, until, by=GroupBy.TOPIC))
        calendar = self._calendar_for(tenant)
        by_topic = {
            r.group: r
            for r in rows(cases, x, period=Period.ALL, by=GroupBy.TOPIC, calendar=calendar)
        }
        wanted = [e for t in model.topics for e in t.example_ids]
        # Examples are shown to supervisors: read afresh, so an erased person's words never are.
        texts = await self._voices.texts(tenant, wanted, fresh=True)
        found = []
        for topic in model.topics:
            at = times.get(topic.id, [])
            this_week = sum(1 for t in at if until - WEEK <= t < until)
            last_week = sum(1 for t in at if until - 2 * WEEK <= t < until - WEEK)
            row = by_topic.get(topic.id)
            found.append(
                TopicFigures(
                    topic=topic,
                    examples=[(e, clean(texts[e])) for e in topic.example_ids if e in texts],
                    messages=sum(1 for t in at if since <= t < until),
                    this_week=this_week,
                    last_week=last_week,
                    spike=this_week >= SPIKE_FLOOR and this_week >= 2 * last_week,
                    cases=0 if row is None else int(row.values["cases"] or 0),
                    values={} if row is None else dict(row.values),
                )
            )
        return found, await self._voices.unplaced(tenant)
