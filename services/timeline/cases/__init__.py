"""Cases that span channels: which case an event belongs to, and what it does to the case.

Pure logic over case documents (`model`, `lifecycle`), the per-tenant windows (`policy`) and
the event facts it reads (`events`); `keeper` assigns and writes cases for the recorder through
the slice's store (`records` protocol, `store` in MongoDB).
"""

from services.timeline.cases.events import CaseEvent, case_event_from
from services.timeline.cases.lifecycle import (
    Assignment,
    CaseRefusedError,
    apply_event,
    assign,
    case_id_for,
    new_case,
    task_id_for,
)
from services.timeline.cases.policy import CasePolicy

__all__ = [
    "Assignment",
    "CaseEvent",
    "CasePolicy",
    "CaseRefusedError",
    "apply_event",
    "assign",
    "case_event_from",
    "case_id_for",
    "new_case",
    "task_id_for",
]
