"""Subscribers following customers over GraphQL WebSocket, counting the pushes they receive."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from gql import GraphQLRequest

from tsunagu.local.graphql import ws_session

LIVE = """
subscription Live($customerId: ID!) {
  timelineUpdated(customerId: $customerId) { customerId eventId }
}
"""
# A notice in flight when the gateway died cannot reach a socket that died with it: an event
# stored this long before a subscriber noticed its disconnection is excused, not missed.
IN_FLIGHT_S = 1.0
# Between reconnection attempts while the gateway is away.
_RECONNECT_S = 0.5


@dataclass(slots=True)
class Follower:
    """One agent's live view of one customer, resubscribing whenever the socket drops.

    `gaps` are wall-clock windows in which the subscription was not live: from a disconnection
    to the first push after resubscribing (no protocol message says "subscribed").
    """

    customer_id: str
    pushed: dict[str, float] = field(default_factory=dict)
    gaps: list[tuple[float, float]] = field(default_factory=list)
    disconnections: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _down_since: float | None = None

    async def follow(self, graphql_url: str, authorization: str) -> None:
        """Subscribe, and subscribe again after any failure, until cancelled."""
        request = GraphQLRequest(LIVE, variable_values={"customerId": self.customer_id})
        while True:
            with contextlib.suppress(Exception):
                async with ws_session(graphql_url, authorization=authorization) as session:
                    async for update in session.subscribe(request):
                        self._pushed(update["timelineUpdated"]["eventId"])
            self.disconnections += 1
            if self._down_since is None:
                self._down_since = time.time()
            await asyncio.sleep(_RECONNECT_S)

    def _pushed(self, event_id: str) -> None:
        now = time.time()
        if self._down_since is not None:
            self.gaps.append((self._down_since - IN_FLIGHT_S, now))
            self._down_since = None
        self.pushed.setdefault(event_id, now)
        self.arrived.set()

    def live(self) -> bool:
        """Whether a push has arrived since the last disconnection (or ever)."""
        return bool(self.pushed) and self._down_since is None

    def excused(self, stored_at: float) -> bool:
        """Whether an event stored at `stored_at` (wall clock) fell in a gap of this follower."""
        gaps = self.gaps
        if self._down_since is not None:
            gaps = [*gaps, (self._down_since - IN_FLIGHT_S, float("inf"))]
        return any(start <= stored_at <= end for start, end in gaps)
