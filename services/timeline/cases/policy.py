"""The per-tenant windows that decide when a contact attaches, reopens or opens a case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class CasePolicy:
    """How long a case stays attachable and reopenable, and when follow-ups fall due.

    Attributes:
        attach_window: A contact attaches to the customer's open case only if the case saw
            activity within this long before the contact; otherwise a new case opens.
        reopen_window: A contact this soon after the latest resolution reopens that case.
        follow_up_due: A follow-up task created by a transfer is due this long after it.
    """

    attach_window: timedelta = timedelta(days=7)
    reopen_window: timedelta = timedelta(hours=72)
    follow_up_due: timedelta = timedelta(hours=24)
