"""A data subject's export: everything held about one customer, as JSON and a CSV of contacts.

Composed from the timeline's read API (the gateway never touches the store): the profile,
every page of the timeline, the cases, the merge history and the audit trail. Values are
the stored ones, unmasked: only a privacy officer may export, and the export is recorded in
the audit before it is answered.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import strawberry
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from gateway.audit import AccessKey, AccessKind, recorder
from gateway.context import Info
from gateway.errors import ErrorCode, GatewayError
from gateway.privacy import check_reason
from gateway.scalars import check_id
from gateway.timeline_client import TimelineCallFailed, TimelineClient
from tsunagu.v1 import interaction_pb2, timeline_pb2

# The largest pages each list of the timeline serves: fewest round trips.
_TIMELINE_PAGE = 200
_CASE_PAGE = 200
_AUDIT_PAGE = 200
EXPORT_FORMAT = "tsunagu.customer-export/1"

CSV_COLUMNS = (
    "event_id",
    "occurred_at",
    "channel",
    "kind",
    "direction",
    "actor_type",
    "actor_id",
    "actor_name",
    "case_id",
    "subject",
    "text",
)

_Page = TypeVar("_Page", bound=Message)


@strawberry.type(
    description="Everything Tsunagu holds about one customer (a subject access request)."
)
class CustomerExport:
    customer_id: strawberry.ID
    exported_at: datetime
    interaction_count: int
    document: str = strawberry.field(
        description=(
            f'One JSON document ("format": "{EXPORT_FORMAT}"): profile, identifiers, every '
            "interaction with its text, cases, merge history, consents and the audit of who "
            "accessed the data."
        )
    )
    interactions_csv: str = strawberry.field(
        description=f"The interactions as CSV (RFC 4180), columns: {', '.join(CSV_COLUMNS)}."
    )


def _plain(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


async def _pages(
    fetch: Callable[[str], Awaitable[_Page | None]], items: Callable[[_Page], list[Any]]
) -> AsyncGenerator[list[Any]]:
    """Every page's items; the timeline's lists all answer `has_more`, `next_cursor`.

    The next page is asked for before this one is handed on, so that what the caller does
    with a page overlaps the timeline's reading of the next.
    """
    cursor = ""
    asked: asyncio.Future[_Page | None] | None = asyncio.ensure_future(fetch(cursor))
    try:
        while asked is not None:
            page = await asked
            asked = None
            if page is None:
                return
            has_more, following = getattr(page, "has_more", False), getattr(page, "next_cursor", "")
            if has_more and following:
                if following == cursor:
                    # A cursor that does not move would page forever.
                    raise TimelineCallFailed("a page of the export did not advance its cursor")
                cursor = following
                asked = asyncio.ensure_future(fetch(cursor))
            yield items(page)
    finally:
        if asked is not None:
            asked.cancel()


def _plain_all(messages: list[Any]) -> list[dict[str, Any]]:
    return [_plain(message) for message in messages]


async def collect(timeline: TimelineClient, tenant: str, customer_id: str) -> dict[str, Any]:
    """The whole export of one (live) customer as plain data.

    Raises:
        GatewayError: ``NOT_FOUND`` when the tenant has no such customer.
    """
    [customer] = await timeline.get_customers(tenant, [customer_id])
    if customer is None:
        raise GatewayError(ErrorCode.NOT_FOUND, f"Customer {customer_id} not found.")
    live = customer.id
    entries: list[timeline_pb2.TimelineEntry] = []
    interactions: list[dict[str, Any]] = []
    async for page in _pages(
        lambda after: timeline.list_interactions(
            tenant, live, page_size=_TIMELINE_PAGE, after=after or None
        ),
        lambda page: list(page.entries),
    ):
        entries.extend(page)
        # In a thread, leaving the event loop free: the next page is read meanwhile (and
        # other requests are served), not after this page's 200 conversions.
        interactions.extend(await asyncio.to_thread(_plain_all, page))
    cases = [
        case
        async for page in _pages(
            lambda after: timeline.list_cases(
                tenant,
                timeline_pb2.CaseFilter(customer_id=live),
                page_size=_CASE_PAGE,
                after=after or None,
            ),
            lambda page: list(page.cases),
        )
        for case in page
    ]
    audit = [
        record
        async for page in _pages(
            lambda after: timeline.list_audit(
                tenant, customer_id=live, page_size=_AUDIT_PAGE, cursor=after
            ),
            lambda page: list(page.records),
        )
        for record in page
    ]
    merges = await timeline.get_merge_history(tenant, live)
    profile = _plain(customer)
    return {
        "format": EXPORT_FORMAT,
        "tenant": tenant,
        "customer_id": live,
        "profile": profile,
        "identifiers": profile.get("identifiers", []),
        "consents": profile.get("consents", []),
        # Each with where the timeline put it: its case, when it was recorded.
        "interactions": interactions,
        "cases": [_plain(case) for case in cases],
        "merge_history": [_plain(merge) for merge in merges],
        "audit": [_plain(record) for record in audit],
        "_interactions": entries,
    }


def interactions_csv(entries: list[timeline_pb2.TimelineEntry]) -> str:
    """The interactions as CSV, one row each, newest first (as the timeline lists them)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        item = entry.interaction
        writer.writerow(
            (
                item.event_id,
                item.occurred_at.ToDatetime(tzinfo=UTC).isoformat(),
                interaction_pb2.Channel.Name(item.channel),
                interaction_pb2.Kind.Name(item.kind),
                interaction_pb2.Direction.Name(item.direction),
                interaction_pb2.ActorType.Name(item.actor.type),
                item.actor.id,
                item.actor.display_name,
                entry.case_id,
                _cell(item.content.subject),
                # A spreadsheet runs a cell starting with = + - @ as a formula: quote it.
                _cell(item.content.text),
            )
        )
    return out.getvalue()


def _cell(text: str) -> str:
    return f"'{text}" if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


async def resolve_export_customer(
    info: Info, customer_id: strawberry.ID, reason: str
) -> CustomerExport:
    """Export everything about one customer, recorded in the audit before it is answered."""
    checked = check_id("customerId", customer_id)
    why = check_reason(reason)
    context = info.context
    tenant = context.principal.tenant
    collected = await collect(context.timeline, tenant, checked)
    entries: list[timeline_pb2.TimelineEntry] = collected.pop("_interactions")
    await recorder(context).record(
        [AccessKey(collected["customer_id"], AccessKind.EXPORT, reason=why)]
    )
    return CustomerExport(
        customer_id=strawberry.ID(collected["customer_id"]),
        exported_at=datetime.now(UTC),
        interaction_count=len(entries),
        document=json.dumps(collected, ensure_ascii=False, sort_keys=True),
        interactions_csv=interactions_csv(entries),
    )


@strawberry.type
class ExportQuery:
    export_customer: CustomerExport = strawberry.field(
        resolver=resolve_export_customer,
        description=(
            "Everything held about one customer as JSON and CSV, for a subject access request "
            "(privacy officers; `reason`, 3-500 characters, e.g. the request's reference, is "
            "recorded in the audit with the export)."
        ),
    )
