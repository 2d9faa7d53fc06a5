"""Who may call a gRPC service: the credentials a server knows, the caller of this call."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

CallerKind = Literal["adapter", "service"]
ALL_TENANTS = "*"
BEARER = "bearer "
_DIGEST_PATTERN = r"^[0-9a-f]{64}$"


def token_digest(token: str) -> str:
    """The SHA-256 hex digest a server keeps instead of the token itself."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class CallerCredential(BaseModel):
    """One caller as a server's configuration describes it (never with its token).

    It proves itself with a bearer token whose SHA-256 digest is `token_sha256`, or with a
    client certificate whose SAN URI (or, failing that, subject CN) is `certificate_identity`,
    or either of the two.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: CallerKind
    # The tenants it acts for; ["*"] (every tenant) only for service identities.
    tenants: list[str] = Field(min_length=1)
    # The one ingest channel an adapter submits to; services have none.
    channel: str = ""
    token_sha256: str = Field(default="", pattern=f"{_DIGEST_PATTERN}|^$")
    certificate_identity: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> CallerCredential:
        if not self.token_sha256 and not self.certificate_identity:
            raise ValueError(f"{self.name}: needs token_sha256 or certificate_identity")
        if self.kind == "adapter":
            if not self.channel:
                raise ValueError(f"{self.name}: an adapter names its channel")
            if ALL_TENANTS in self.tenants:
                raise ValueError(f"{self.name}: only service identities may act for every tenant")
        elif self.channel:
            raise ValueError(f"{self.name}: a service identity has no channel")
        return self


CREDENTIALS = TypeAdapter(list[CallerCredential])


def issue_credential(
    name: str, *, kind: CallerKind, tenants: Sequence[str], channel: str = ""
) -> tuple[CallerCredential, str]:
    """A new random bearer token, and the credential (its digest only) servers are given."""
    token = secrets.token_urlsafe(32)
    credential = CallerCredential(
        name=name,
        kind=kind,
        tenants=list(tenants),
        channel=channel,
        token_sha256=token_digest(token),
    )
    return credential, token


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of the current call, as servicers see it."""

    name: str
    kind: CallerKind
    # None: every tenant.
    tenants: frozenset[str] | None
    channel: str = ""

    @classmethod
    def of(cls, credential: CallerCredential) -> Caller:
        everyone = ALL_TENANTS in credential.tenants
        tenants = None if everyone else frozenset(credential.tenants)
        return cls(credential.name, credential.kind, tenants, credential.channel)

    def acts_for(self, tenant: str) -> bool:
        """Whether this caller may read or write `tenant`'s data."""
        return self.tenants is None or tenant in self.tenants

    @property
    def only_tenant(self) -> str | None:
        """Its tenant when it has exactly one, else None."""
        if self.tenants is None or len(self.tenants) != 1:
            return None
        return next(iter(self.tenants))


class CallerRegistry:
    """The callers a server accepts, found by token digest or certificate identity."""

    def __init__(self, credentials: Iterable[CallerCredential]) -> None:
        self._by_digest: list[tuple[bytes, Caller]] = []
        self._by_identity: dict[str, Caller] = {}
        for credential in credentials:
            caller = Caller.of(credential)
            if credential.token_sha256:
                self._by_digest.append((bytes.fromhex(credential.token_sha256), caller))
            if credential.certificate_identity:
                self._by_identity[credential.certificate_identity] = caller

    def __len__(self) -> int:
        return len(self._by_digest) + len(self._by_identity)

    def by_token(self, token: str) -> Caller | None:
        """The caller holding `token`, or None.

        Every known digest is compared, in constant time, so the answer's timing says
        nothing about which digest (or how much of one) a guess matched.
        """
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        found = None
        for known, caller in self._by_digest:
            if hmac.compare_digest(known, digest):
                found = caller
        return found

    def by_certificate(self, identities: Sequence[str]) -> Caller | None:
        """The caller whose certificate carries one of `identities` (SAN URIs, then the CN)."""
        for identity in identities:
            if caller := self._by_identity.get(identity):
                return caller
        return None


def bearer_token(authorization: str) -> str | None:
    """The token of an `authorization: Bearer <token>` value, or None for another scheme."""
    if authorization[: len(BEARER)].lower() != BEARER:
        return None
    return authorization[len(BEARER) :].strip() or None


_current: ContextVar[Caller] = ContextVar("tsunagu_grpc_caller")


def current_caller() -> Caller:
    """The caller the server's interceptor authenticated for the call being served.

    Raises:
        LookupError: Outside a call authenticated by `tsunagu.grpc_auth.CallerInterceptor`.
    """
    return _current.get()


def set_current_caller(caller: Caller) -> None:
    """Record the authenticated caller; each call runs in its own task, hence its own context."""
    _current.set(caller)
