"""Settings every gRPC server shares: who may call it, its TLS, reflection and health port."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tsunagu.grpc_auth import Admit, CallerInterceptor, ServerInterceptor
from tsunagu.grpc_callers import CREDENTIALS, CallerCredential, CallerRegistry
from tsunagu.grpc_tls import server_credentials

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerSecurity:
    """How a `tsunagu.rpc.GrpcServer` authenticates, encrypts and describes itself."""

    # Production servers get a `CallerInterceptor`; any interceptor fits (a test double of a
    # server may take every call).
    interceptor: ServerInterceptor
    credentials: grpc.ServerCredentials | None = None
    reflection: bool = True
    # A plaintext port serving only health checks: kubelet's gRPC probes cannot do TLS.
    health_port: int | None = None


class GrpcServerSettings(BaseSettings):
    """The gRPC security part of a service's settings (the service sets the env prefix).

    Callers are JSON, a list of `tsunagu.grpc_callers.CallerCredential`, in `callers` (an
    env var) and/or the file `callers_file` (Kubernetes mounts a Secret there); both hold
    token digests, never tokens. No callers: every call but health is refused.
    """

    model_config = SettingsConfigDict(extra="forbid")

    callers: list[CallerCredential] = Field(default_factory=list)
    callers_file: Path | None = None
    # Server TLS (PEM files); unset: plaintext, for a local run only.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Client certificates must chain to this CA; with require_client_cert, every client
    # needs one (mTLS only, no bearer tokens over a connection without a certificate).
    tls_client_ca_file: Path | None = None
    tls_require_client_cert: bool = False
    # Server reflection (grpcurl without .proto files): on locally, off in production.
    reflection: bool = True
    health_port: int | None = Field(default=None, ge=0, le=65535)

    @model_validator(mode="after")
    def _tls_complete(self) -> GrpcServerSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file needs tls_cert_file and tls_key_file")
        if self.tls_require_client_cert and self.tls_client_ca_file is None:
            raise ValueError("tls_require_client_cert needs tls_client_ca_file")
        return self

    def caller_credentials(self) -> list[CallerCredential]:
        """Every configured caller: the env's, then the file's (read now: fail at start)."""
        credentials = list(self.callers)
        if self.callers_file is not None:
            credentials += CREDENTIALS.validate_json(self.callers_file.read_bytes())
        return credentials

    def server_security(self, *, admit: Admit) -> ServerSecurity:
        """The server's security from these settings; `admit` says which callers it serves."""
        credentials = None
        if self.tls_cert_file is not None and self.tls_key_file is not None:
            credentials = server_credentials(
                cert_file=self.tls_cert_file,
                key_file=self.tls_key_file,
                client_ca_file=self.tls_client_ca_file,
                require_client_cert=self.tls_require_client_cert,
            )
        registry = CallerRegistry(self.caller_credentials())
        if not len(registry):
            log.warning("no gRPC callers configured: every call but health checks is refused")
        return ServerSecurity(
            interceptor=CallerInterceptor(registry, admit=admit),
            credentials=credentials,
            reflection=self.reflection,
            health_port=self.health_port,
        )
