"""Customers' words and resolution notes, read back from the timeline when needed, never stored.

Insights persists ids, times, topics and figures only (docs/insights.md, "What is kept"): the
words stay sealed in the timeline, which opens them per read and answers `[erased]` once the
person is erased, so an erased person's words leave topics and similar cases by themselves.
A per-tenant cache in memory saves asking twice; a topic rebuild refreshes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

from services.insights.text import customer_text
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1 import timeline_pb2

# Reads many stored entries back from the timeline (tenant, event ids), in few calls.
ReadMany = Callable[[str, Sequence[str]], Awaitable[Sequence[timeline_pb2.TimelineEntry]]]

# What the timeline returns for an erased person's entry (services/timeline/erasure/codec.py;
# insights may not import timeline internals): no words to learn from.
ERASED_TEXT = "[erased]"


def words_of(interaction: pb.Interaction) -> str:
    """A customer message's text or a resolution's note; "" for anything else or erased."""
    if interaction.content.text.strip() == ERASED_TEXT:
        return ""
    if interaction.WhichOneof("detail") == "agent_action":
        action = interaction.agent_action
        if action.WhichOneof("action") == "resolution":
            return action.resolution.summary.strip()
        return ""
    return customer_text(interaction) or ""


class Words:
    """Reads words by event id from the timeline; caches them per tenant in memory only."""

    def __init__(self, read_many: ReadMany) -> None:
        self._read_many = read_many
        self._cache: dict[str, dict[str, str]] = {}
        self._generations: dict[str, int] = {}

    def remember(self, tenant: str, event_id: str, text: str) -> None:
        """Words just heard on a notice: no need to read them back soon."""
        self._cache.setdefault(tenant, {})[event_id] = text

    def forget(self, tenant: str) -> None:
        """Drop the tenant's cache (a rebuild reads everything afresh: erasures show)."""
        self._cache.pop(tenant, None)
        self._generations[tenant] = self.generation(tenant) + 1

    def generation(self, tenant: str) -> int:
        """Counts `forget`s: what was built from older words (an index) is out of date."""
        return self._generations.get(tenant, 0)

    async def texts(
        self, tenant: str, event_ids: Iterable[str], *, fresh: bool = False
    ) -> dict[str, str]:
        """Event id → its words, for those that have any (erased and unknown ones left out).

        ``fresh`` reads them all back from the timeline, cache or not: for words shown to a
        person, so an erasure shows at once rather than at the next rebuild.

        Raises:
            grpc.aio.AioRpcError: The timeline could not answer.
        """
        wanted = list(dict.fromkeys(event_ids))
        cache = self._cache.setdefault(tenant, {})
        missing = wanted if fresh else [e for e in wanted if e not in cache]
        if missing:
            read = {
                e.interaction.event_id: words_of(e.interaction)
                for e in await self._read_many(tenant, missing)
            }
            for event_id in missing:
                cache[event_id] = read.get(event_id, "")
        return {e: cache[e] for e in wanted if cache.get(e)}
