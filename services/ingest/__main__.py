"""`python -m services.ingest`: one channel's ingestion service (TSUNAGU_INGEST_CHANNEL)."""

from __future__ import annotations

import logging

from services.ingest.service import IngestService
from services.ingest.settings import IngestSettings
from tsunagu.runtime import configure_logging, run, wait_for_stop_signal
from tsunagu.telemetry import configure_telemetry

log = logging.getLogger("services.ingest")


async def main() -> None:
    settings = IngestSettings()  # the channel comes from the environment
    configure_logging()
    configure_telemetry(f"tsunagu-ingest-{settings.channel}")
    async with IngestService(settings) as service:
        # Supervisors and tests detect readiness from this line.
        address = service.server.address
        await wait_for_stop_signal(
            ready=lambda: log.info("ingest-%s ready on %s", settings.channel, address)
        )
        log.info("ingest-%s stopping", settings.channel)


if __name__ == "__main__":
    run(main)
