"""The console's routes: its page, its assets, its config, and the local GraphiQL page."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from gateway.settings import GatewaySettings

CONSOLE_PATH = "/console"
STATIC = Path(__file__).parent / "static"
# Files are revalidated, never cached blindly: a new release must not run old scripts.
_CACHE = "no-cache"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(settings: GatewaySettings, *, graphiql: bool = False) -> str:
    """The console's policy: every script and style from this origin, none inline.

    The browser may talk to this origin (HTTP and WebSocket), to the local issuer's sign-in
    endpoint in a local run, and to the IdP's token endpoint; nothing else.
    """
    connect = ["'self'"] + [
        origin
        for origin in (
            _origin(settings.console_local_signin_url),
            _origin(settings.oidc_token_endpoint),
        )
        if origin
    ]
    # GraphiQL's editor styles its own nodes and its CSS embeds its fonts as data: URLs;
    # the console needs neither.
    styles = "'self' 'unsafe-inline'" if graphiql else "'self'"
    fonts = "'self' data:" if graphiql else "'self'"
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            f"style-src {styles}",
            "img-src 'self' data:",
            f"font-src {fonts}",
            f"connect-src {' '.join(connect)}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def security_headers(policy: str) -> dict[str, str]:
    """Headers of every console response."""
    return {
        "content-security-policy": policy,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": _CACHE,
    }


class _Assets(StaticFiles):
    """The console's files, each answered with the console's security headers."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__(directory=STATIC)
        self._headers = headers

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(self._headers)
        return response


def console_config(settings: GatewaySettings) -> dict[str, object]:
    """What the browser needs to sign in and to reach the API (no secrets)."""
    oidc = None
    if settings.oidc_authorization_endpoint and settings.oidc_token_endpoint:
        oidc = {
            "authorizationEndpoint": settings.oidc_authorization_endpoint,
            "tokenEndpoint": settings.oidc_token_endpoint,
            "clientId": settings.oidc_client_id,
            "scope": settings.oidc_scope,
        }
    return {
        "graphqlPath": "/graphql",
        "localSignInUrl": settings.console_local_signin_url or None,
        "oidc": oidc,
        "graphiql": settings.graphiql,
    }


def graphiql_page(settings: GatewaySettings) -> Response:
    """GraphiQL from the project's own copies of its assets (no CDN)."""
    headers = security_headers(content_security_policy(settings, graphiql=True))
    return FileResponse(STATIC / "graphiql.html", headers=headers, media_type="text/html")


def console_routes(settings: GatewaySettings) -> list[BaseRoute]:
    """``/console``, its config and its assets; empty when the console is turned off."""
    if not settings.console:
        return []
    headers = security_headers(content_security_policy(settings))
    config = console_config(settings)

    async def page(request: Request) -> Response:  # noqa: ARG001 - Starlette's signature
        return FileResponse(STATIC / "index.html", headers=headers, media_type="text/html")

    async def config_json(request: Request) -> Response:  # noqa: ARG001 - Starlette's signature
        return JSONResponse(config, headers=headers)

    return [
        Route(CONSOLE_PATH, page, methods=["GET"]),
        Route(f"{CONSOLE_PATH}/", page, methods=["GET"]),
        Route(f"{CONSOLE_PATH}/config.json", config_json, methods=["GET"]),
        Mount(f"{CONSOLE_PATH}/assets", app=_Assets(headers), name="console-assets"),
    ]
