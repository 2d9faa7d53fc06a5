"""`python -m tsunagu.bus.provision`: create or update the JetStream streams, then exit."""

from __future__ import annotations

import logging
from dataclasses import fields

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tsunagu.bus.connection import NatsTlsSettings, connect_as
from tsunagu.bus.streams import DAY, StreamLimits, ensure_streams
from tsunagu.runtime import configure_logging, parse_settings, run

log = logging.getLogger("tsunagu.bus.provision")

# The line supervisors, `make run` and tests wait for.
DONE_LINE = "streams provisioned:"


class ProvisionSettings(BaseSettings, NatsTlsSettings):
    """The one place stream limits are configured (TSUNAGU_STREAMS_*)."""

    model_config = SettingsConfigDict(env_prefix="TSUNAGU_STREAMS_", extra="forbid")

    nats_url: str = Field(default="nats://127.0.0.1:4222", min_length=1)
    # Its NATS user and password (docs/security.md); unset: whatever nats_url carries.
    nats_user: str = ""
    nats_password: SecretStr = SecretStr("")
    # JetStream replicas of every stream: 3 in a clustered deployment.
    replicas: int = Field(default=1, ge=1, le=5)
    # Must cover the longest retry horizon of any adapter (a retry inside it is a duplicate).
    duplicate_window_seconds: float = Field(default=2 * DAY, gt=0)
    max_age_seconds: float = Field(default=30 * DAY, gt=0)
    max_bytes: int = Field(default=10 * 1024**3, ge=1024**2)
    # How long timeline notices stay for a gateway catching up after a reconnect.
    notice_max_age_seconds: float = Field(default=5 * 60.0, ge=10)
    # Per tenant and channel (subject `interactions.<tenant>.<channel>`); -1: none. When a
    # limit is reached, publishes are refused (RESOURCE_EXHAUSTED at ingest), never discarded.
    max_msgs_per_subject: int = Field(default=-1, ge=-1)

    @field_validator("max_msgs_per_subject")
    @classmethod
    def _per_subject(cls, value: int) -> int:
        if value == 0:
            raise ValueError("-1 (no limit) or at least 1")
        return value

    @property
    def limits(self) -> StreamLimits:
        # Every limit this class names, under the same name; the rest keep their defaults.
        return StreamLimits(**self.model_dump(include={f.name for f in fields(StreamLimits)}))


async def provision(settings: ProvisionSettings) -> str:
    """Bring the streams to the configured limits; returns the summary line it prints."""
    nc = await connect_as(settings, name="tsunagu-provision")
    try:
        outcome = await ensure_streams(nc.jetstream(), settings.limits)
    finally:
        await nc.drain()
    return DONE_LINE + " " + ", ".join(f"{name} {done}" for name, done in outcome.items())


def main() -> None:
    configure_logging()
    settings = parse_settings(ProvisionSettings)

    async def _provision() -> None:
        print(await provision(settings), flush=True)

    run(_provision)


if __name__ == "__main__":
    main()
