"""``python -m gateway``: parse settings, bootstrap, serve until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys

from pydantic import ValidationError

from gateway.app import bootstrap
from gateway.auth import AuthenticationNotConfigured
from gateway.server import GatewayServer, create_server
from gateway.settings import GatewaySettings

_log = logging.getLogger("gateway")


async def _announce_when_ready(server: GatewayServer) -> None:
    await server.ready.wait()
    url = server.graphql_url
    _log.info("GraphQL at %s", url)
    # The one line a supervisor waits for (the other readiness signal is /healthz).
    print(f"gateway listening on {url}", flush=True)


async def _serve(server: GatewayServer) -> None:
    announcer = asyncio.create_task(_announce_when_ready(server))
    try:
        await server.serve()
    finally:
        announcer.cancel()


def main() -> int:
    """Run the gateway.

    Returns:
        The exit code: 0 after a graceful shutdown (uvicorn re-raises SIGTERM/SIGINT once
        it has shut down, so a signalled process ends by that signal), 2 for bad settings.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = GatewaySettings()
        app = bootstrap(settings)
    except (ValidationError, AuthenticationNotConfigured) as error:
        print(f"gateway: cannot start: {error}", file=sys.stderr)
        return 2
    asyncio.run(_serve(create_server(app, settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
