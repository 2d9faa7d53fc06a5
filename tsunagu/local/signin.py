"""The console's sign-in for local runs: a token of the demo tenant for the role one picks.

Served by the local issuer's loopback server, never by the gateway: production gateways mint
no tokens. Only the console's own origin (the local gateway's) may call it from a browser.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tsunagu.local.issuer import ROLES, LocalIssuer

SIGNIN_PATH = "/console/signin"
# Long enough for a working day of demos, short enough not to linger.
TTL_SECONDS = 8 * 3600
# {"role": "privacy_officer"} and a little slack: anything bigger is not a sign-in.
_MAX_BODY_BYTES = 256
_NAMES = {
    "agent": "Demo agent",
    "supervisor": "Demo supervisor",
    "analyst": "Demo analyst",
    "admin": "Demo admin",
    "privacy_officer": "Demo privacy officer",
}


class LocalSignIn:
    """Mints a token of ``tenant`` for one role, for browsers of the allowed origins."""

    def __init__(self, issuer: LocalIssuer, *, tenant: str) -> None:
        self._issuer = issuer
        self._tenant = tenant
        # Set once the gateway listens: its origin is the console's.
        self.origins: frozenset[str] = frozenset()

    def allow_gateway(self, graphql_url: str) -> None:
        """Let the console served next to ``graphql_url`` sign in (by 127.0.0.1 or localhost)."""
        base = console_url(graphql_url).removesuffix("/console")
        self.origins = frozenset({base, base.replace("://127.0.0.1:", "://localhost:")})

    def _cors(self, origin: str) -> dict[str, str]:
        return {
            "access-control-allow-origin": origin,
            "access-control-allow-methods": "POST",
            "access-control-allow-headers": "content-type",
            "vary": "origin",
        }

    async def handle(self, request: Request) -> Response:
        """Answer a preflight or a sign-in; a refusal says why and mints nothing."""
        origin = request.headers.get("origin", "")
        if origin not in self.origins:
            return JSONResponse({"error": "origin not allowed"}, status_code=403)
        headers = self._cors(origin)
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=headers)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_BODY_BYTES:
                return JSONResponse({"error": "too large"}, status_code=413, headers=headers)
        try:
            role = json.loads(body)["role"]
        except (ValueError, TypeError, KeyError):
            return JSONResponse(
                {"error": 'expected {"role": ...}'}, status_code=400, headers=headers
            )
        if not isinstance(role, str) or role not in ROLES:
            return JSONResponse({"error": "unknown role"}, status_code=400, headers=headers)
        token = self._issuer.mint(
            tenant=self._tenant,
            roles=[role],
            subject=f"demo-{role}",
            name=_NAMES[role],
            ttl_seconds=TTL_SECONDS,
        )
        answer = {"token": token, "tenant": self._tenant, "roles": [role], "expiresIn": TTL_SECONDS}
        return JSONResponse(answer, headers=headers)

    def routes(self) -> list[Route]:
        """The sign-in route for the issuer's server."""
        return [Route(SIGNIN_PATH, self.handle, methods=["POST", "OPTIONS"])]


def console_url(graphql_url: str) -> str:
    """The console's URL on the gateway that serves GraphQL at ``graphql_url``."""
    return graphql_url.split("/graphql", 1)[0] + "/console"
