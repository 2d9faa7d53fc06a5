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

# Repeat contact looks this far past a resolution, so the query reads that much further.
_REPEAT_HORIZON = 7 * DAY


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
        calendar_for: Callable[[str], TenantCalendar],
        targets_for: Callable[[str], Targets],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._index = index
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

    async def _load(self, q: MetricsQuery) -> tuple[list[CaseFacts], Context]:
        horizon = q.until + _REPEAT_HORIZON
        around = sorted(
            (c for c in await self._index.cases(q.tenant) if q.since <= c.opened_at < horizon),
            key=lambda c: (c.opened_at, c.case_id),
        )
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
        x = await self._context(tenant, recent)
        return customers_at_risk(recent, x, identity=x.identity, limit=limit)
