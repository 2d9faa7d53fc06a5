"""Ingestion service settings, parsed once at start from TSUNAGU_INGEST_* variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tsunagu.bus.connection import NatsTlsSettings
from tsunagu.bus.streams import STREAM_WAIT_SECONDS
from tsunagu.bus.subjects import CHANNELS_BY_TOKEN
from tsunagu.contracts.limits import MAX_EVENT_BYTES, MAX_TEXT_BYTES
from tsunagu.crypto.settings import KeyProviderSettings
from tsunagu.grpc_settings import GrpcServerSettings
from tsunagu.identifiers.regions import PhoneRegion

ChannelName = Literal["chat", "voice", "email", "sms", "social", "web"]


class IngestSettings(GrpcServerSettings, NatsTlsSettings, KeyProviderSettings):
    """One deployment serves one channel; everything else has a local default.

    Its callers (`TSUNAGU_INGEST_CALLERS`, `TSUNAGU_INGEST_CALLERS_FILE`) are adapter
    credentials for this channel; the gRPC security settings are `GrpcServerSettings`'.
    """

    model_config = SettingsConfigDict(env_prefix="TSUNAGU_INGEST_", extra="forbid")

    channel: ChannelName
    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    # `/metrics` for Prometheus, on `host` (0: any free port, printed at start).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    nats_url: str = "nats://127.0.0.1:4222"
    # Its NATS user and password (docs/security.md); unset: whatever nats_url carries.
    nats_user: str = ""
    nats_password: SecretStr = SecretStr("")
    default_region: PhoneRegion = "JP"
    tenant_regions: dict[str, PhoneRegion] = Field(default_factory=dict)
    # Items per SubmitBatch. The request itself is also capped by bytes (tsunagu.rpc: 32 of the
    # largest events, about 16 MiB), so a batch of many large events is refused whole.
    max_batch_items: int = Field(default=1000, ge=1, le=1000)
    max_text_bytes: int = Field(default=MAX_TEXT_BYTES, ge=1024)
    max_event_bytes: int = Field(default=MAX_EVENT_BYTES, ge=4096)
    publish_ack_timeout_seconds: float = Field(default=5.0, gt=0)
    # How long start-up waits for the provisioning step to have created the streams.
    stream_wait_seconds: float = Field(default=STREAM_WAIT_SECONDS, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)

    @property
    def channel_number(self) -> int:
        return CHANNELS_BY_TOKEN[self.channel]
