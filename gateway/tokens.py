"""Agents' bearer tokens: OIDC/JWT validated against an IdP's JWKS, turned into a principal."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from gateway.auth import Credentials, Principal, Unauthenticated
from gateway.jwks import JwksKeys, KeysUnavailable

_log = logging.getLogger(__name__)

# Asymmetric algorithms only: an HS* algorithm would let anyone holding the IdP's *public*
# key (it is published) sign tokens, and "none" signs nothing.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_BEARER = "bearer "


@dataclass(frozen=True)
class ClaimNames:
    """Where an IdP puts what a principal needs; dotted paths reach nested claims.

    Keycloak, for instance, puts roles under ``realm_access.roles``. A claim whose whole
    name matches (Auth0's ``https://example.com/roles``) wins over a nested path.
    """

    tenant: str = "tenant"
    subject: str = "sub"
    display_name: str = "name"
    roles: str = "roles"


@dataclass(frozen=True)
class TokenRules:
    """What a token must satisfy besides a valid signature."""

    issuer: str
    audience: str
    algorithms: frozenset[str]
    leeway_seconds: float = 30.0

    def __post_init__(self) -> None:
        unsafe = self.algorithms - ASYMMETRIC_ALGORITHMS
        if unsafe or not self.algorithms:
            raise ValueError(
                f"allowed JWT algorithms must be asymmetric ones from "
                f"{sorted(ASYMMETRIC_ALGORITHMS)}; refused: {sorted(unsafe) or 'an empty list'}"
            )
        if not self.issuer or not self.audience:
            raise ValueError("a JWT issuer and audience are required")


def bearer_token(credentials: Credentials) -> str:
    """The bearer token a caller presented: the ``Authorization`` header over HTTP, or the
    ``Authorization``/``authorization`` key of a WebSocket's ``connection_init`` payload.

    Never the URL: query strings end up in proxy and access logs.

    Raises:
        Unauthenticated: No bearer token was presented.
    """
    params = credentials.connection_params
    presented = (
        credentials.headers.get("authorization")
        or params.get("Authorization")
        or params.get("authorization")
    )
    if not isinstance(presented, str) or not presented.lower().startswith(_BEARER):
        raise Unauthenticated("A bearer token is required.")
    return presented[len(_BEARER) :].strip()


def _claim(claims: Mapping[str, object], path: str) -> object:
    # A name as a whole first: Auth0's namespaced claims are URLs, full of dots.
    if path in claims:
        return claims[path]
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _roles(value: object) -> frozenset[str]:
    # OIDC providers send a list; some (scope-style) a space-separated string.
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(role, str) for role in value):
        return frozenset(value)
    raise Unauthenticated("The token's roles claim is malformed.")


def _text(claims: Mapping[str, object], path: str, *, required: bool) -> str:
    value = _claim(claims, path)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise Unauthenticated(f"The token has no valid {path!r} claim.")
    return value


def _expiry(claims: Mapping[str, object]) -> float:
    # PyJWT has checked `exp` by converting it with int(), so it converts here too.
    expiry = claims["exp"]
    if not isinstance(expiry, int | float | str):
        raise Unauthenticated("The token has no valid 'exp' claim.")
    return float(expiry)


class JwtAuthenticator:
    """Authenticates callers by a JWT signed with one of the IdP's published keys."""

    def __init__(self, *, keys: JwksKeys, rules: TokenRules, claims: ClaimNames) -> None:
        self._keys = keys
        self._rules = rules
        self._claims = claims

    async def authenticate(self, credentials: Credentials) -> Principal:
        """The caller, from the signed claims of a valid token (``Unauthenticated`` if none)."""
        claims = await self._verified_claims(bearer_token(credentials))
        names = self._claims
        return Principal(
            subject=_text(claims, names.subject, required=True),
            tenant=_text(claims, names.tenant, required=True),
            roles=_roles(_claim(claims, names.roles)),
            display_name=_text(claims, names.display_name, required=False),
            valid_until=_expiry(claims) + self._rules.leeway_seconds,
        )

    async def _verified_claims(self, token: str) -> dict[str, object]:
        # The reasons stay in the debug log, never the token: callers learn only "invalid".
        try:
            header = jwt.get_unverified_header(token)
            algorithm, kid = header.get("alg"), header.get("kid")
            if algorithm not in self._rules.algorithms or not isinstance(kid, str):
                raise jwt.InvalidAlgorithmError("algorithm not allowed or no kid")
            key = await self._keys.key(kid)
            if key.algorithm_name != algorithm:
                raise jwt.InvalidAlgorithmError("the token's algorithm is not its key's")
            claims: dict[str, object] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._rules.audience,
                issuer=self._rules.issuer,
                leeway=self._rules.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, KeysUnavailable) as error:
            _log.debug("token refused: %s", type(error).__name__)
            raise Unauthenticated("The bearer token is invalid.") from None
        return claims
