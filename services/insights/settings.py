"""Insights service settings, parsed once at start from TSUNAGU_INSIGHTS_* variables."""

from __future__ import annotations

import time
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.insights.calendar import TenantCalendar
from services.insights.figures import Targets
from tsunagu.bus.connection import NatsTlsSettings
from tsunagu.bus.streams import STREAM_WAIT_SECONDS
from tsunagu.grpc_settings import GrpcServerSettings


class TenantInsights(BaseModel):
    """A tenant's calendar and targets (`{"acme": {"time_zone": "Europe/Paris"}}`)."""

    model_config = ConfigDict(extra="forbid")

    time_zone: str = "Asia/Tokyo"
    opens_hour: int = Field(default=9, ge=0, le=23)
    closes_hour: int = Field(default=18, ge=1, le=24)
    # Business days, Monday 0 .. Sunday 6.
    business_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    first_response_target: timedelta = timedelta(hours=1)
    resolution_target: timedelta = timedelta(days=2)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("business_days")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= day <= 6 for day in value):
            raise ValueError("business days are 0 (Monday) .. 6 (Sunday)")
        return value


class InsightsSettings(GrpcServerSettings, NatsTlsSettings):
    """Everything the insights service needs; its callers are service identities (the gateway)."""

    model_config = SettingsConfigDict(env_prefix="TSUNAGU_INSIGHTS_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=50070, ge=0, le=65535)
    metrics_port: int = Field(default=0, ge=0, le=65535)
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str = ""
    nats_password: SecretStr = SecretStr("")
    mongodb_uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    # Its own database: the timeline's collections are never read here.
    mongodb_database: str = "tsunagu_insights"
    # Where notices too large to carry their entry are read back (the timeline's gRPC API),
    # with this service's own caller token.
    timeline_address: str = "127.0.0.1:50060"
    timeline_token: SecretStr = SecretStr("")
    timeline_timeout_seconds: float = Field(default=10.0, gt=0)
    consumer_name: str = Field(default="insights", pattern=r"^[A-Za-z0-9_-]+$")
    # Which notices it follows: every tenant's by default (a tenant's own: one per tenant).
    subject_filter: str = Field(
        default="timeline.updated.>", pattern=r"^timeline\.updated\.[A-Za-z0-9_.>*-]+$"
    )
    # Notices fetched and read back together: one bulk read of the timeline answers 200.
    fetch_batch: int = Field(default=200, ge=1, le=1024)
    # A fetch returns what has arrived (a dozen notices under a steady flow): the feed keeps
    # gathering until `fetch_batch` or this long after its first fetch, so the timeline
    # answers fewer, larger read-backs. 0: each fetch applied as it comes.
    feed_linger_seconds: float = Field(default=0.25, ge=0)
    ack_wait_seconds: float = Field(default=30.0, gt=0)
    max_deliver: int = Field(default=5, ge=1)
    stream_wait_seconds: float = Field(default=STREAM_WAIT_SECONDS, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)
    # The timeline's follow-up due time (TSUNAGU_TIMELINE_CASE_FOLLOW_UP_DUE): keep them equal.
    follow_up_due: timedelta = timedelta(hours=24)
    defaults: TenantInsights = Field(default_factory=TenantInsights)
    tenants: dict[str, TenantInsights] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _linger_inside_ack_wait(self) -> InsightsSettings:
        # The notices in hand wait the linger unacknowledged; most of `ack_wait` must be left
        # for applying them, or the server would deliver them again meanwhile.
        if self.feed_linger_seconds > self.ack_wait_seconds / 4:
            raise ValueError("feed_linger_seconds must be at most a quarter of ack_wait_seconds")
        return self

    def _tenant(self, tenant: str) -> TenantInsights:
        return self.tenants.get(tenant, self.defaults)

    def calendar_for(self, tenant: str) -> TenantCalendar:
        t = self._tenant(tenant)
        return TenantCalendar(t.time_zone, t.opens_hour, t.closes_hour, t.business_days)

    def targets_for(self, tenant: str) -> Targets:
        t = self._tenant(tenant)
        return Targets(
            first_response=t.first_response_target.total_seconds(),
            resolution=t.resolution_target.total_seconds(),
        )


def now() -> float:
    return time.time()
