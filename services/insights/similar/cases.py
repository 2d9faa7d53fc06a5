"""Resolved cases indexed by what the customer asked and how it was solved."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from services.insights.similar.index import TextIndex


@dataclass(frozen=True, slots=True)
class ResolvedCase:
    """A resolved case as the index sees it.

    Attributes:
        case_id: The timeline's case id.
        text: The customer's messages on the case, joined.
        resolution_note: What the agent wrote on how it was solved.
    """

    case_id: str
    text: str
    resolution_note: str


class CaseIndex:
    """A tenant's resolved cases; `nearest` finds those like an open case."""

    def __init__(self, cases: Sequence[ResolvedCase]) -> None:
        """Index `cases` (a repeated case id keeps its first entry)."""
        self._notes: dict[str, str] = {}
        for case in cases:
            self._notes.setdefault(case.case_id, case.resolution_note)
        # The note counts as much as the question: "refunded the second charge" is what makes
        # a double-charge case findable when the customer only wrote "two payments".
        self._index = TextIndex([(c.case_id, f"{c.text}\n{c.resolution_note}") for c in cases])

    def __len__(self) -> int:
        return len(self._index)

    def nearest(
        self, text: str, k: int = 5, *, exclude: Collection[str] = ()
    ) -> list[tuple[str, float]]:
        """The resolved cases most like `text`, best first, as (case id, cosine score).

        Args:
            text: The open case's customer messages.
            k: How many at most (1 to 50).
            exclude: Case ids to leave out (the open case itself, when it was resolved before).

        Raises:
            ValueError: `k` out of range.
        """
        return self._index.query(text, k, exclude=exclude)

    def resolution_note(self, case_id: str) -> str | None:
        """The note of an indexed case; `None` when it is not indexed."""
        return self._notes.get(case_id)
