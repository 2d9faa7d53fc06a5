"""`python -m services.timeline`: run the timeline service until SIGTERM/SIGINT."""

from __future__ import annotations

import logging

from services.timeline.service import TimelineService
from services.timeline.settings import TimelineSettings
from tsunagu.runtime import configure_logging, run, wait_for_stop_signal
from tsunagu.telemetry import configure_telemetry

log = logging.getLogger("services.timeline")


async def main() -> None:
    settings = TimelineSettings()
    configure_logging()
    configure_telemetry("tsunagu-timeline")
    async with TimelineService(settings) as service:
        # Supervisors and tests detect readiness from this line.
        address = service.server.address
        await wait_for_stop_signal(
            service.failed, ready=lambda: log.info("timeline ready on %s", address)
        )
        log.info("timeline stopping")
    if service.failed.done():
        raise SystemExit(1)


if __name__ == "__main__":
    run(main)
