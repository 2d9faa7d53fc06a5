"""Relay-style paging shared by every list the gateway pages: page info and page-size checks."""

from __future__ import annotations

import strawberry

from gateway.errors import bad_user_input


def check_first(first: int, maximum: int) -> int:
    """Check a ``first`` argument against the list's page limit.

    Raises:
        GatewayError: ``BAD_USER_INPUT`` for ``first`` outside 1..``maximum``.
    """
    if not 1 <= first <= maximum:
        raise bad_user_input(f"`first` must be between 1 and {maximum}, got {first}.")
    return first


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="Always false: pages are read forward only (allowed by the Relay spec)."
    )
    start_cursor: str | None
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")

    @classmethod
    def forward(cls, *, has_next_page: bool, start: str | None, end: str | None) -> PageInfo:
        """A page read forward (the only direction the timeline pages in)."""
        return cls(
            has_next_page=has_next_page,
            has_previous_page=False,
            start_cursor=start,
            end_cursor=end,
        )
