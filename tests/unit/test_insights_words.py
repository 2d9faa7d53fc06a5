"""Words read back from the timeline: in bulk, cached per tenant, erased ones left out."""

from __future__ import annotations

from collections.abc import Sequence

from services.insights.words import ERASED_TEXT, Words, words_of
from tests import builders
from tsunagu.v1 import interaction_pb2 as pb
from tsunagu.v1 import timeline_pb2


class _Timeline:
    """Entries by event id, counting the bulk reads asked of it."""

    def __init__(self, entries: Sequence[pb.Interaction]) -> None:
        self.entries = {e.event_id: timeline_pb2.TimelineEntry(interaction=e) for e in entries}
        self.calls: list[int] = []

    async def read_many(
        self, tenant: str, event_ids: Sequence[str]
    ) -> list[timeline_pb2.TimelineEntry]:
        self.calls.append(len(event_ids))
        found = (self.entries[e] for e in event_ids if e in self.entries)
        return [e for e in found if e.interaction.tenant == tenant]


def _erased(event_id: str) -> pb.Interaction:
    masked = pb.Interaction(event_id=event_id, kind=pb.KIND_MESSAGE, direction=pb.DIRECTION_INBOUND)
    masked.content.text = ERASED_TEXT
    return masked


async def test_words_are_read_in_one_call_cached_and_erased_ones_left_out() -> None:
    chats = [builders.chat("acme", text=f"my parcel is late, part {n}") for n in range(300)]
    gone = _erased("erased-1")
    timeline = _Timeline([*chats, gone])
    words = Words(timeline.read_many)
    wanted = [c.event_id for c in chats] + ["erased-1", "unknown"]

    found = await words.texts("acme", wanted)
    again = await words.texts("acme", wanted)

    assert found == again == {c.event_id: c.content.text for c in chats}
    assert timeline.calls == [302]
    words.forget("acme")
    assert await words.texts("acme", [chats[0].event_id]) == {
        chats[0].event_id: chats[0].content.text
    }
    assert timeline.calls == [302, 1]


async def test_heard_words_need_no_read_and_tenants_do_not_share_them() -> None:
    chat = builders.chat("acme", text="where is my refund")
    timeline = _Timeline([chat])
    words = Words(timeline.read_many)
    words.remember("acme", chat.event_id, "where is my refund")
    assert await words.texts("acme", [chat.event_id]) == {chat.event_id: "where is my refund"}
    assert timeline.calls == []
    assert await words.texts("other", [chat.event_id]) == {}
    assert timeline.calls == [1]


async def test_fresh_words_show_an_erasure_the_cache_would_still_hide() -> None:
    chat = builders.chat("acme", text="my hamster ate the coupon")
    timeline = _Timeline([chat])
    words = Words(timeline.read_many)
    assert await words.texts("acme", [chat.event_id]) == {chat.event_id: chat.content.text}
    # The person is erased: the timeline now answers with the mask.
    timeline.entries[chat.event_id] = timeline_pb2.TimelineEntry(interaction=_erased(chat.event_id))
    timeline.entries[chat.event_id].interaction.tenant = "acme"

    cached = await words.texts("acme", [chat.event_id])
    fresh = await words.texts("acme", [chat.event_id], fresh=True)

    assert cached == {chat.event_id: chat.content.text}  # the cache until the next rebuild
    assert fresh == {}  # what is shown to people
    assert await words.texts("acme", [chat.event_id]) == {}  # and the cache learned it
    assert timeline.calls == [1, 1]


def test_words_of_reads_messages_and_resolution_notes_only() -> None:
    resolution = builders.agent_action(
        "acme", "c-1", case_id="k-1", resolution=pb.ResolutionAction(summary=" re-sent ")
    )
    csat = builders.agent_action("acme", "c-1", case_id="k-1", csat=pb.CsatResponse(score=2))
    reply = builders.agent_reply("acme", visitor="v-1", text="On its way")
    assert words_of(resolution) == "re-sent"
    assert words_of(csat) == ""
    assert words_of(reply) == ""
    assert words_of(builders.chat("acme", text="late again")) == "late again"
    assert words_of(_erased("e")) == ""
