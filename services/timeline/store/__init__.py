"""MongoDB persistence of the timeline: the only code that touches the customer store."""

from services.timeline.store.database import TimelineStore

__all__ = ["TimelineStore"]
