"""`python -m tests.integration.timeline_killed_before_announce`: the timeline, which kills
itself (SIGKILL) once its first batch is stored, before any notice of it goes out (for tests).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence

from services.timeline.__main__ import TIMELINE
from services.timeline.notices import TimelineAnnouncer
from services.timeline.recorder import Recorded
from tsunagu.runtime import run_process


async def _killed(
    _announcer: TimelineAnnouncer, _batch: Sequence[Recorded], _contexts: object = ()
) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    # The crash point: between the store write and the announcement, as a real crash can be.
    TimelineAnnouncer.__call__ = _killed  # type: ignore[method-assign, assignment]
    run_process(TIMELINE)
