"""Timeline service settings, parsed once at start from TSUNAGU_TIMELINE_* variables."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.timeline.cases.policy import CasePolicy
from services.timeline.identity.policy import IdentityPolicy, IdentityRules
from tsunagu.bus.connection import NatsTlsSettings
from tsunagu.bus.streams import STREAM_WAIT_SECONDS
from tsunagu.crypto.settings import KeyProviderSettings
from tsunagu.grpc_settings import GrpcServerSettings
from tsunagu.identifiers.regions import PhoneRegion


def _positive(value: timedelta | None) -> timedelta | None:
    if value is not None and value <= timedelta(0):
        raise ValueError("must be a positive duration")
    return value


class CaseWindows(BaseModel):
    """A tenant's overrides of the case windows; unset fields keep the service defaults."""

    model_config = ConfigDict(extra="forbid")

    attach_window: timedelta | None = None
    reopen_window: timedelta | None = None
    follow_up_due: timedelta | None = None

    _check = field_validator("attach_window", "reopen_window", "follow_up_due")(_positive)


class TimelineSettings(GrpcServerSettings, NatsTlsSettings, KeyProviderSettings):
    """Everything the timeline needs to start; invalid values fail start-up with a message.

    Its callers (`TSUNAGU_TIMELINE_CALLERS`, `TSUNAGU_TIMELINE_CALLERS_FILE`) are service
    identities (the gateway, tools); the gRPC security settings are `GrpcServerSettings`'.
    """

    model_config = SettingsConfigDict(env_prefix="TSUNAGU_TIMELINE_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=50060, ge=0, le=65535)
    # `/metrics` for Prometheus, on `host` (0: any free port, printed at start).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    nats_url: str = "nats://127.0.0.1:4222"
    # Its NATS user and password (docs/security.md); unset: whatever nats_url carries.
    nats_user: str = ""
    nats_password: SecretStr = SecretStr("")
    # The gateway's Ed25519 public keys (PEM files, JSON list): an agent action is executed
    # only when one of them verifies its signed actor. Two during a key rotation.
    action_verify_key_files: list[Path] = Field(default_factory=list)
    mongodb_uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongodb_database: str = "tsunagu"
    # "majority" in production; the embedded store accepts it too.
    mongodb_write_concern: str = "majority"
    # `make bench` only: count store commands and keep their tallies in this JSON file.
    store_command_counts_file: Path | None = None
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
    # How long to wait at start for the provisioning step to have created the streams.
    stream_wait_seconds: float = Field(default=STREAM_WAIT_SECONDS, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)
    # How often consumer lag and dead-letter depth are read from JetStream for /metrics.
    metrics_sample_seconds: float = Field(default=5.0, gt=0)
    # Cases (durations as seconds or ISO 8601, e.g. "P7D", "PT72H"): a contact attaches to
    # an open case active within the attach window, reopens a case resolved within the
    # reopen window, else opens a new case; a transfer's follow-up is due after
    # follow_up_due. Per-tenant overrides: {"acme": {"reopen_window": "PT48H"}}.
    case_attach_window: timedelta = timedelta(days=7)
    case_reopen_window: timedelta = timedelta(hours=72)
    case_follow_up_due: timedelta = timedelta(hours=24)
    tenant_case_windows: dict[str, CaseWindows] = Field(default_factory=dict)

    _check_windows = field_validator(
        "case_attach_window", "case_reopen_window", "case_follow_up_due"
    )(_positive)
    # Identity resolution rules for every tenant, and whole-rule overrides per tenant, as JSON:
    # TSUNAGU_TIMELINE_TENANT_IDENTITY='{"shop": {"blocklist": ["email:info@shop.example"],
    #                                            "fold_email_subaddress": true}}'
    identity: IdentityRules = Field(default_factory=IdentityRules)
    tenant_identity: dict[str, IdentityRules] = Field(default_factory=dict)
    # The read audit (docs/privacy.md): records older than this leave the chain's old end.
    audit_retention_days: int = Field(default=400, ge=1)

    # How long an interaction is kept after it happened, then deleted by the retention sweep
    # (docs/privacy.md, Retention); per-tenant overrides as JSON:
    # TSUNAGU_TIMELINE_TENANT_INTERACTION_RETENTION='{"acme": "P365D"}'. Unset: kept.
    interaction_retention: timedelta | None = None
    # How often the sweep deletes expired interactions and audit records (as MongoDB's TTL
    # monitor would, every 60 seconds; services/timeline/retention_sweep.py).
    retention_sweep_seconds: float = Field(default=60.0, gt=0)
    tenant_interaction_retention: dict[str, timedelta] = Field(default_factory=dict)

    @field_validator("interaction_retention")
    @classmethod
    def _retention_positive(cls, value: timedelta | None) -> timedelta | None:
        return _positive(value)

    @field_validator("tenant_interaction_retention")
    @classmethod
    def _tenant_retention_positive(cls, value: dict[str, timedelta]) -> dict[str, timedelta]:
        for retention in value.values():
            _positive(retention)
        return value

    def retention_for(self, tenant: str) -> timedelta | None:
        """How long the tenant's interactions are kept (None: until erased)."""
        return self.tenant_interaction_retention.get(tenant, self.interaction_retention)

    @model_validator(mode="after")
    def _identity_rules_parse(self) -> TimelineSettings:
        # Fail start-up on a blocklist entry that does not normalise, not on the first event.
        for tenant in ["", *self.tenant_identity]:
            self.identity_for(tenant)
        return self

    def region_for(self, tenant: str) -> str:
        return self.tenant_regions.get(tenant, self.default_region)

    def case_policy_for(self, tenant: str) -> CasePolicy:
        """The tenant's case windows: its overrides over the service defaults."""
        own = self.tenant_case_windows.get(tenant, CaseWindows())
        return CasePolicy(
            attach_window=own.attach_window or self.case_attach_window,
            reopen_window=own.reopen_window or self.case_reopen_window,
            follow_up_due=own.follow_up_due or self.case_follow_up_due,
        )

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
