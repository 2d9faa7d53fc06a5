"""Relay-style paging shared by every list the gateway pages: one connection shape, page checks.

Not ``strawberry.relay``: its edges must each carry a cursor, but the timeline pages cases by
page (only a page's last case has a cursor), and its ``PageInfo`` would replace this one's
descriptions; both would change the public schema. The shape clients use (``edges { cursor
node }``, ``pageInfo``) is the same.
"""

from __future__ import annotations

from typing import Generic, TypeVar

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


_Node = TypeVar("_Node")
_Edge = TypeVar("_Edge")


@strawberry.type
class Edge(Generic[_Node]):
    """An edge whose node has its own cursor (``Edge[Interaction]`` is ``InteractionEdge``)."""

    cursor: str
    node: _Node


@strawberry.type
class Connection(Generic[_Edge]):
    """One page of a list; each list subclasses it with its GraphQL name and description."""

    edges: list[_Edge]
    page_info: PageInfo
