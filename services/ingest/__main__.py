"""`python -m services.ingest`: one channel's ingestion service (TSUNAGU_INGEST_CHANNEL)."""

from __future__ import annotations

from services.ingest.bootstrap import bootstrap
from services.ingest.service import IngestService
from services.ingest.settings import IngestSettings
from tsunagu.metrics import MetricsAddress
from tsunagu.runtime import Process, run_process


def _ready_line(settings: IngestSettings, service: IngestService) -> str:
    # Supervisors and tests (tsunagu.local, tests/) detect readiness from this line.
    return f"ingest-{settings.channel} ready on {service.server.address}"


INGEST: Process[IngestSettings, IngestService] = Process(
    name=lambda settings: f"ingest-{settings.channel}",
    settings=IngestSettings,
    serve=bootstrap,
    ready_line=_ready_line,
    # Following readiness is the one background task: if it dies, readiness would lie.
    crashed=lambda service: service.readiness.stopped,
    metrics=lambda settings: MetricsAddress(settings.host, settings.metrics_port),
)

if __name__ == "__main__":
    run_process(INGEST)
