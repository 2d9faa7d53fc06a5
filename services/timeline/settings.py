"""Timeline service settings, parsed once at start from TSUNAGU_TIMELINE_* variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tsunagu.identifiers.regions import PhoneRegion


class TimelineSettings(BaseSettings):
    """Everything the timeline needs to start; invalid values fail start-up with a message."""

    model_config = SettingsConfigDict(env_prefix="TSUNAGU_TIMELINE_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=50060, ge=0, le=65535)
    nats_url: str = "nats://127.0.0.1:4222"
    mongodb_uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongodb_database: str = "tsunagu"
    # "majority" in production; the embedded store accepts it too.
    mongodb_write_concern: str = "majority"
    default_region: PhoneRegion = "JP"
    tenant_regions: dict[str, PhoneRegion] = Field(default_factory=dict)
    consumer_name: str = Field(default="timeline", pattern=r"^[A-Za-z0-9_-]+$")
    # Which interactions this consumer takes: all tenants by default; a tenant's subset
    # (`interactions.<tenant>.>`) lets a large tenant get consumers of its own.
    subject_filter: str = Field(
        default="interactions.>", pattern=r"^interactions\.[A-Za-z0-9_.>*-]+$"
    )
    fetch_batch: int = Field(default=64, ge=1, le=1024)
    max_ack_pending: int = Field(default=1024, ge=1)
    ack_wait_seconds: float = Field(default=30.0, gt=0)
    max_deliver: int = Field(default=5, ge=1)
    # JetStream replicas of the streams this service declares: 3 in a clustered deployment.
    stream_replicas: int = Field(default=1, ge=1, le=5)
    # Must cover the longest retry horizon of any adapter (a retry inside it is a duplicate).
    duplicate_window_seconds: float = Field(default=2 * 24 * 3600, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)

    def region_for(self, tenant: str) -> str:
        return self.tenant_regions.get(tenant, self.default_region)
