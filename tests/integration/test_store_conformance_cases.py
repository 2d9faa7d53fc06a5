"""Store conformance for the operations cases and search issue (see test_store_conformance)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from services.timeline.cases.model import CaseDoc
from services.timeline.cases.store import CaseQuery
from services.timeline.search_keys import PREFIX_TOP
from services.timeline.stores import TimelineStore
from tests.integration.test_store_conformance import real_mongodb_only
from tests.integration.timeline_db import timeline_db

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store(mongodb_uri: str, database_name: str) -> AsyncIterator[TimelineStore]:
    async with timeline_db(mongodb_uri, database_name) as store:
        yield store


def case(case_id: str, *, minutes: int, due: datetime | None = None, **fields: object) -> CaseDoc:
    # Only what the queries read: the store takes the document as it is.
    return cast(
        "CaseDoc",
        {
            "_id": case_id,
            "tenant": "t",
            "version": 0,
            "customer_id": "cus_1",
            "status": "open",
            "owner_agent_id": "",
            "escalation_level": 0,
            "updated_at": T0 + timedelta(minutes=minutes),
            "next_follow_up_due": due,
            **fields,
        },
    )


async def test_prefix_ranges_match_names_in_any_script(store: TimelineStore) -> None:
    await store.db["customers"].insert_many(
        [
            {"_id": "a", "tenant": "t", "search_name": "tanakayui"},
            {"_id": "b", "tenant": "t", "search_name": "田中太郎"},
            {"_id": "c", "tenant": "t", "search_name": "tanb"},
            {"_id": "d", "tenant": "t"},
        ]
    )

    async def prefixed(key: str) -> list[str]:
        cursor = store.db["customers"].find(
            {"tenant": "t", "search_name": {"$gte": key, "$lt": key + PREFIX_TOP}}
        )
        return sorted([d["_id"] async for d in cursor])

    assert await prefixed("tana") == ["a"]
    assert await prefixed("tan") == ["a", "c"]
    assert await prefixed("田中") == ["b"]
    assert await prefixed("z") == []


async def test_case_listing_orders_pages_and_filters_by_due_dates(store: TimelineStore) -> None:
    cases = store.cases
    for doc in [
        case("c1", minutes=1, due=T0),
        case("c2", minutes=2),
        case("c3", minutes=2, status="escalated", escalation_level=1),
        case("c4", minutes=3, status="resolved", escalation_level=2),
    ]:
        assert await cases.insert(doc)
    assert not await cases.insert(case("c1", minutes=9))
    everything = await cases.find("t", CaseQuery(limit=10))
    assert [d["_id"] for d in everything] == ["c4", "c3", "c2", "c1"]
    # Dates written inside whole documents stay dates: range filters find them.
    overdue = await cases.find("t", CaseQuery(follow_up_due_before=T0 + timedelta(seconds=1)))
    assert [d["_id"] for d in overdue] == ["c1"]
    escalated = await cases.find("t", CaseQuery(escalated_only=True))
    assert [d["_id"] for d in escalated] == ["c3"]
    after = await cases.find("t", CaseQuery(before=(T0 + timedelta(minutes=2), "c3")))
    assert [d["_id"] for d in after] == ["c2", "c1"]
    # Version-checked replace, then a merge's re-point.
    assert await cases.replace({**everything[0], "status": "open"}, expected_version=0)
    assert not await cases.replace({**everything[0], "status": "open"}, expected_version=0)
    assert await cases.repoint("t", ["cus_1"], "cus_2") == 4
    assert [d["_id"] for d in await cases.recent("t", "cus_2")] == ["c4", "c3", "c2", "c1"]


@real_mongodb_only
async def test_regex_prefixes_match_array_elements(store: TimelineStore) -> None:
    """nx-27017 deviation: `$regex` (and ranges) do not match elements of arrays."""
    await store.db["customers"].insert_one({"_id": "a", "tenant": "t", "names": ["tanaka", "yui"]})
    found = await store.db["customers"].find_one({"names": {"$regex": "^" + re.escape("yu")}})
    assert found is not None
