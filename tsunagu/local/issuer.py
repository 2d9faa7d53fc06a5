"""The local token issuer: a signing key kept under the data folder, and its JWKS over HTTP.

The gateway validates local tokens exactly as an IdP's: it fetches this JWKS by URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from tsunagu.lifecycle import CannotStart, Lifecycle

ISSUER = "tsunagu-local"
AUDIENCE = "tsunagu-gateway"
ALGORITHM = "ES256"
JWKS_PATH = "/.well-known/jwks.json"
ROLES = ("agent", "supervisor", "analyst", "admin", "privacy_officer")
DEFAULT_TTL_SECONDS = 12 * 3600
_KEY_FILE = "issuer-signing-key.pem"


class LocalIssuer:
    """Mints ES256 tokens with one key; ``kid`` is derived from the key, so it is stable."""

    def __init__(
        self, key: ec.EllipticCurvePrivateKey, *, issuer: str = ISSUER, audience: str = AUDIENCE
    ) -> None:
        self._key = key
        self.issuer = issuer
        self.audience = audience
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = uuid.uuid5(uuid.NAMESPACE_OID, public.hex()).hex[:16]

    @classmethod
    def generate(cls, **names: str) -> LocalIssuer:
        """An issuer with a fresh key (tests; ``issuer``/``audience`` may be given)."""
        return cls(ec.generate_private_key(ec.SECP256R1()), **names)

    @classmethod
    def load_or_create(cls, data_dir: Path) -> LocalIssuer:
        """The issuer whose key lives in ``data_dir``, generating the key on first use.

        Args:
            data_dir: The local data folder (``.tsunagu``); the key is kept across runs, so
                tokens printed by an earlier run stay valid until they expire.
        """
        path = data_dir / _KEY_FILE
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise CannotStart(f"{path} is not an EC private key; delete it to get a new one")
            return cls(key)
        key = ec.generate_private_key(ec.SECP256R1())
        data_dir.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.touch(mode=0o600)
        path.write_bytes(pem)
        return cls(key)

    def jwk(self) -> dict[str, object]:
        """The public key as a JWK."""
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def mint(
        self,
        *,
        tenant: str,
        roles: Iterable[str],
        subject: str | None = None,
        name: str | None = None,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ) -> str:
        """A signed token for an agent of ``tenant`` with ``roles``.

        Args:
            tenant: The ``tenant`` claim.
            roles: The ``roles`` claim (a list).
            subject: The ``sub`` claim; by default named after the roles.
            name: The ``name`` claim (the display name on the timeline).
            ttl_seconds: Lifetime.

        Returns:
            The compact JWT.
        """
        roles = sorted(roles)
        subject = subject or f"local-{'-'.join(roles) or 'nobody'}"
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "name": name or subject,
            "tenant": tenant,
            "roles": roles,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
        }
        return self.sign(claims)

    def sign(self, claims: dict[str, object]) -> str:
        """Sign exactly ``claims`` (tests use it to build tokens that must be refused)."""
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})


def jwks_app(
    keys: Callable[[], list[dict[str, object]]], *, routes: Sequence[BaseRoute] = ()
) -> Starlette:
    """An app serving ``{"keys": keys()}`` at ``JWKS_PATH`` (read per request), and ``routes``."""

    async def jwks(request: Request) -> JSONResponse:  # noqa: ARG001 - Starlette's signature
        return JSONResponse({"keys": keys()})

    return Starlette(routes=[Route(JWKS_PATH, jwks, methods=["GET"]), *routes])


class _QuietServer(uvicorn.Server):
    """uvicorn that leaves signals to the process runner and says when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class JwksServer(Lifecycle):
    """Serves a JWKS on a loopback port (0: a free one) in this process."""

    def __init__(
        self,
        keys: Callable[[], list[dict[str, object]]],
        *,
        port: int = 0,
        routes: Sequence[BaseRoute] = (),
    ) -> None:
        config = uvicorn.Config(
            jwks_app(keys, routes=routes),
            host="127.0.0.1",
            port=port,
            log_config=None,
            log_level="warning",
            access_log=False,
        )
        self._server = _QuietServer(config)
        self._serving: asyncio.Task[None] | None = None
        self.url = ""
        self.base_url = ""

    async def open(self) -> None:
        self._serving = asyncio.create_task(self._server.serve(), name="jwks")
        ready = asyncio.ensure_future(self._server.ready.wait())
        try:
            await asyncio.wait({ready, self._serving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not self._server.started:
            raise CannotStart("the local JWKS server could not start")
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.url = f"{self.base_url}{JWKS_PATH}"

    async def close(self) -> None:
        if self._serving is None or self._serving.done():
            return
        self._server.should_exit = True
        await self._serving
