"""Gateway settings, read from ``TSUNAGU_GATEWAY_*`` environment variables once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import grpc
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tsunagu.bus.connection import NatsTlsSettings
from tsunagu.grpc_tls import channel_credentials


class GatewaySettings(BaseSettings, NatsTlsSettings):
    """Everything the gateway can be told; constructing it parses and validates the env.

    Lists are given as JSON, e.g. ``TSUNAGU_GATEWAY_DEV_ROLES='["agent","supervisor"]'``.
    """

    model_config = SettingsConfigDict(env_prefix="TSUNAGU_GATEWAY_", frozen=True)

    host: str = "127.0.0.1"
    # 0 asks the OS for a free port; the ready line then prints the port actually bound.
    port: int = Field(default=8000, ge=0, le=65535)
    # `/metrics` for Prometheus, on `host` (0: any free port, printed at start).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    timeline_address: str = Field(default="127.0.0.1:50060", min_length=1)
    # The gateway's service token for the timeline's gRPC API (docs/security.md).
    timeline_token: SecretStr = SecretStr("")
    # TLS to the timeline when a CA is set; a client certificate and key add mTLS.
    timeline_tls_ca_file: Path | None = None
    timeline_tls_cert_file: Path | None = None
    timeline_tls_key_file: Path | None = None
    # The insights service (service metrics, customers at risk) and the gateway's token for it.
    insights_address: str = Field(default="127.0.0.1:50070", min_length=1)
    insights_token: SecretStr = SecretStr("")
    # "jwt": callers present an IdP's bearer token (make run starts a local issuer).
    # "development" lets every caller in as one fixed principal; an explicit choice that
    # refuses to start on anything but a loopback address.
    auth_mode: Literal["development", "jwt"] = "jwt"
    # The IdP: tokens must carry this issuer and audience, be signed with one of these
    # (asymmetric) algorithms by a key published at jwks_url.
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_jwks_url: str = ""
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    # Clock skew tolerated on exp/nbf/iat.
    jwt_leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    jwks_cache_seconds: float = Field(default=300.0, gt=0)
    # An unknown kid refetches the JWKS (key rotation), at most this often.
    jwks_min_refetch_seconds: float = Field(default=30.0, ge=0)
    # Claim names; dotted paths reach nested claims (Keycloak: realm_access.roles).
    jwt_tenant_claim: str = Field(default="tenant", min_length=1)
    jwt_subject_claim: str = Field(default="sub", min_length=1)
    jwt_name_claim: str = Field(default="name", min_length=1)
    jwt_roles_claim: str = Field(default="roles", min_length=1)
    dev_tenant: str = Field(default="demo", min_length=1)
    dev_roles: list[str] = Field(default_factory=lambda: ["agent"])
    graphiql: bool = True
    mask_errors: bool = False
    max_query_depth: int = Field(default=10, ge=1)
    max_aliases: int = Field(default=30, ge=0)
    max_tokens: int = Field(default=2000, ge=1)
    grpc_timeout_seconds: float = Field(default=5.0, gt=0)
    nats_url: str = Field(default="nats://127.0.0.1:4222", min_length=1)
    # How long a mutation waits for the timeline to store its event (read-your-writes)
    # before it answers ACCEPTED with the event id.
    write_wait_seconds: float = Field(default=3.0, ge=0, le=30)
    # How long a mutation waits for JetStream to acknowledge its event before it fails
    # with BUS_UNAVAILABLE.
    publish_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Updates buffered per subscription; a client that falls further behind is cut off.
    subscription_queue_size: int = Field(default=100, ge=1, le=10_000)
    # Rate limits (docs/security.md, abuse limits): token buckets of `burst` requests,
    # refilled at `per_minute`. Queries and subscriptions share one budget per principal
    # (tenant + subject), mutations have their own; requests that fail authentication are
    # counted per client address.
    rate_limit_queries_per_minute: float = Field(default=600.0, gt=0)
    rate_limit_queries_burst: int = Field(default=120, ge=1)
    rate_limit_mutations_per_minute: float = Field(default=120.0, gt=0)
    rate_limit_mutations_burst: int = Field(default=30, ge=1)
    rate_limit_failed_auth_per_minute: float = Field(default=30.0, gt=0)
    rate_limit_failed_auth_burst: int = Field(default=30, ge=1)
    # Active subscriptions a WebSocket connection, and a principal over all of its
    # connections, may hold at once.
    max_subscriptions_per_connection: int = Field(default=20, ge=1)
    max_subscriptions_per_principal: int = Field(default=50, ge=1)
    # Addresses (or CIDR ranges) of the reverse proxies whose X-Forwarded-For names the
    # client: behind an ingress, the client's address keys the failed-login budget, not
    # the ingress's. "*" trusts anyone to say who they are: never on an exposed port.
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    dev_subject: str = Field(default="developer", min_length=1)
    dev_display_name: str = "Developer"

    # The Ed25519 private key (PEM) the gateway signs every agent action's actor with; only
    # the gateway holds it, and the timeline executes no agent action without its signature.
    action_signing_key_file: Path | None = None

    # The gateway's NATS user and password (docs/security.md); unset: whatever nats_url carries.
    nats_user: str = ""
    nats_password: SecretStr = SecretStr("")

    # GraphQL over GET puts the query, with its phone numbers and e-mail addresses, in the
    # URL, which proxies and browsers log. Unset: allowed only where GraphiQL is on (local
    # development); the production config turns GraphiQL off, so GET answers 405 there.
    graphql_over_get: bool | None = None

    # The agent console at /console (docs/console.md); its config endpoint tells the browser
    # how to sign in. A local run names the local issuer's sign-in URL (never set in
    # production: the gateway itself mints no tokens).
    console: bool = True
    console_local_signin_url: str = ""
    # OIDC authorization code + PKCE against the IdP (a public client: no secret).
    oidc_authorization_endpoint: str = ""
    oidc_token_endpoint: str = ""
    oidc_client_id: str = ""
    oidc_scope: str = "openid profile"

    def timeline_tls(self) -> grpc.ChannelCredentials | None:
        """TLS credentials for the timeline channel; None: plaintext (a local run)."""
        if self.timeline_tls_ca_file is None:
            return None
        return channel_credentials(
            ca_file=self.timeline_tls_ca_file,
            cert_file=self.timeline_tls_cert_file,
            key_file=self.timeline_tls_key_file,
        )

    @property
    def queries_over_get(self) -> bool:
        """Whether GraphQL queries may come as GET requests."""
        return self.graphiql if self.graphql_over_get is None else self.graphql_over_get
