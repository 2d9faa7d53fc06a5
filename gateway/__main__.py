"""``python -m gateway``: the GraphQL gateway, run by the common process runner."""

from __future__ import annotations

from gateway.action_signing import ActionSigningNotConfigured
from gateway.app import bootstrap
from gateway.authenticators import AuthenticationNotConfigured
from gateway.server import GatewayServer, create_server
from gateway.settings import GatewaySettings
from tsunagu.metrics import MetricsAddress
from tsunagu.runtime import Process, run_process


def _serve(settings: GatewaySettings) -> GatewayServer:
    return create_server(bootstrap(settings), settings)


GATEWAY: Process[GatewaySettings, GatewayServer] = Process(
    name=lambda _settings: "gateway",
    settings=GatewaySettings,
    serve=_serve,
    # The one line a supervisor waits for (the other readiness signal is /healthz).
    ready_line=lambda _settings, server: f"gateway listening on {server.graphql_url}",
    crashed=lambda server: server.stopped,
    config_errors=(AuthenticationNotConfigured, ActionSigningNotConfigured),
    metrics=lambda settings: MetricsAddress(settings.host, settings.metrics_port),
)

if __name__ == "__main__":
    run_process(GATEWAY)
