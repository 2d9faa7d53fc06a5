"""`python -m services.timeline`: run the timeline service until SIGTERM/SIGINT."""

from __future__ import annotations

from services.timeline.service import TimelineService
from services.timeline.settings import TimelineSettings
from tsunagu.metrics import MetricsAddress
from tsunagu.runtime import Process, run_process

TIMELINE: Process[TimelineSettings, TimelineService] = Process(
    name=lambda _settings: "timeline",
    settings=TimelineSettings,
    serve=TimelineService,
    # Supervisors and tests (tsunagu.local, tests/) detect readiness from this line.
    ready_line=lambda _settings, service: f"timeline ready on {service.server.address}",
    # A dead consumer task stops the process through the graceful path, then exit 1.
    crashed=lambda service: service.failed,
    metrics=lambda settings: MetricsAddress(settings.host, settings.metrics_port),
)

if __name__ == "__main__":
    run_process(TIMELINE)
