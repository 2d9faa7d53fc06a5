"""The export's paging, and its document joined around interactions encoded page by page."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.privacy_export import _document, _json, _pages
from gateway.timeline_client import TimelineCallFailed
from tsunagu.v1 import timeline_pb2


def _page(first: int, size: int, *, last: int) -> timeline_pb2.ListInteractionsResponse:
    entries = [timeline_pb2.TimelineEntry(cursor=f"c{i}") for i in range(first, first + size)]
    more = first + size < last
    return timeline_pb2.ListInteractionsResponse(
        entries=entries, has_more=more, next_cursor=entries[-1].cursor if more else ""
    )


class _Timeline:
    """Pages of 3 over 7 entries; notes when each page is asked and when one was handed on."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.asked: dict[str, asyncio.Event] = {}

    async def fetch(self, after: str) -> timeline_pb2.ListInteractionsResponse:
        self.events.append(f"ask {after or 'start'}")
        self.asked.setdefault(after, asyncio.Event()).set()
        first = int(after[1:]) + 1 if after else 0
        return _page(first, min(3, 7 - first), last=7)


async def test_every_page_is_read_once_in_order_and_the_next_one_while_this_one_is_used() -> None:
    timeline = _Timeline()
    read: list[str] = []

    async for entries in _pages(timeline.fetch, lambda page: list(page.entries)):
        cursor = entries[-1].cursor
        if len(read) + len(entries) < 7:
            # The caller works on this page; the next one is asked for meanwhile.
            await asyncio.wait_for(timeline.asked.setdefault(cursor, asyncio.Event()).wait(), 10)
        timeline.events.append(f"used {cursor}")
        read += [entry.cursor for entry in entries]

    assert read == [f"c{i}" for i in range(7)]
    assert timeline.events == [
        "ask start",
        "ask c2",
        "used c2",
        "ask c5",
        "used c5",
        "used c6",
    ]


async def test_a_page_asked_ahead_is_cancelled_when_the_caller_stops() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def fetch(after: str) -> timeline_pb2.ListInteractionsResponse:
        if not after:
            return _page(0, 3, last=9)
        started.set()
        try:
            await asyncio.Event().wait()  # a timeline that never answers
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    pages = _pages(fetch, lambda page: list(page.entries))
    first = await anext(pages)
    await asyncio.wait_for(started.wait(), 10)
    await pages.aclose()

    assert [entry.cursor for entry in first] == ["c0", "c1", "c2"]
    await asyncio.wait_for(cancelled.wait(), 10)


async def test_a_cursor_that_does_not_move_fails_rather_than_paging_forever() -> None:
    async def fetch(after: str) -> timeline_pb2.ListInteractionsResponse:
        return timeline_pb2.ListInteractionsResponse(
            entries=[timeline_pb2.TimelineEntry(cursor="c0")], has_more=True, next_cursor="c0"
        )

    with pytest.raises(TimelineCallFailed, match="did not advance"):
        async for _ in _pages(fetch, lambda page: list(page.entries)):
            pass


_DOCUMENT: dict[str, Any] = {
    "format": "tsunagu.customer-export/1",
    "profile": {"display_name": "山田 花子", "z": [1, 2.5, None, True], "a": {}},
    "interactions": [
        {"interaction": {"content": {"text": 'say "hi"\\ \u2028 ok'}}, "case_id": ""},
        {"b": [], "a": {"nested": {"y": 1, "x": 2}}},
    ],
    "cases": [],
    "audit": [{"sequence": "2"}],
    "customer_id": "c-1",
}


@pytest.mark.parametrize("document", [_DOCUMENT, {}, {"only": []}])
def test_the_joined_document_is_what_encoding_it_whole_writes(document: dict[str, Any]) -> None:
    encoded = {key: _json(value) for key, value in document.items()}
    if "interactions" in document:
        # As the export joins them: each interaction encoded on its own.
        each = [_json(item) for item in document["interactions"]]
        encoded["interactions"] = "[" + ", ".join(each) + "]"

    joined = _document(encoded)

    assert joined == json.dumps(document, ensure_ascii=False, sort_keys=True)
    assert json.loads(joined) == document
