"""`python -m services.insights`: run the insights service until SIGTERM/SIGINT."""

from __future__ import annotations

from services.insights.service import InsightsService
from services.insights.settings import InsightsSettings
from tsunagu.metrics import MetricsAddress
from tsunagu.runtime import Process, run_process

INSIGHTS: Process[InsightsSettings, InsightsService] = Process(
    name=lambda _settings: "insights",
    settings=InsightsSettings,
    serve=InsightsService,
    # Supervisors and tests detect readiness from this line.
    ready_line=lambda _settings, service: f"insights ready on {service.server.address}",
    crashed=lambda service: service.failed,
    metrics=lambda settings: MetricsAddress(settings.host, settings.metrics_port),
)

if __name__ == "__main__":
    run_process(INSIGHTS)
