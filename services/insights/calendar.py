"""A tenant's calendar: its time zone, business hours, and the periods figures are grouped by."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Period(StrEnum):
    """How figures are bucketed in time (by when the case opened, in the tenant's zone)."""

    ALL = "all"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class TenantCalendar:
    """Time zone and business hours (`opens`..`closes` local hour on `weekdays`, Monday 0)."""

    zone: str = "Asia/Tokyo"
    opens: int = 9
    closes: int = 18
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)

    def local(self, at: float) -> datetime:
        return datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(self.zone))

    def in_business_hours(self, at: float) -> bool:
        local = self.local(at)
        return local.weekday() in self.weekdays and self.opens <= local.hour < self.closes

    def period_start(self, at: float, period: Period) -> str:
        """The local date the bucket of `at` starts on (ISO), or "" for `Period.ALL`."""
        day = self.local(at).date()
        if period is Period.ALL:
            return ""
        if period is Period.WEEK:
            day = day - timedelta(days=day.weekday())
        elif period is Period.MONTH:
            day = date(day.year, day.month, 1)
        return day.isoformat()
