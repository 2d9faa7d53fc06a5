"""Timeline service settings, parsed once at start from TSUNAGU_TIMELINE_* variables."""

from __future__ import annotations

from functools import cached_property

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.timeline.identity.policy import IdentityPolicy, IdentityRules
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
    # Identity resolution rules for every tenant, and whole-rule overrides per tenant, as JSON:
    # TSUNAGU_TIMELINE_TENANT_IDENTITY='{"shop": {"blocklist": ["email:info@shop.example"],
    #                                            "fold_email_subaddress": true}}'
    identity: IdentityRules = Field(default_factory=IdentityRules)
    tenant_identity: dict[str, IdentityRules] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _identity_rules_parse(self) -> TimelineSettings:
        # Fail start-up on a blocklist entry that does not normalise, not on the first event.
        for tenant in ["", *self.tenant_identity]:
            self.identity_for(tenant)
        return self

    def region_for(self, tenant: str) -> str:
        return self.tenant_regions.get(tenant, self.default_region)

    @cached_property
    def _policies(self) -> dict[str, IdentityPolicy]:
        return {}

    def identity_for(self, tenant: str) -> IdentityPolicy:
        """The tenant's identity rules, with its phone region (built once per tenant)."""
        policy = self._policies.get(tenant)
        if policy is None:
            rules = self.tenant_identity.get(tenant, self.identity)
            policy = IdentityPolicy.from_rules(rules, region=self.region_for(tenant))
            self._policies[tenant] = policy
        return policy
