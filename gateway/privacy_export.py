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
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass
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
_Row = tuple[str, ...]


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


@dataclass(frozen=True, slots=True)
class _Export:
    """The export of one customer, as it is answered."""

    customer_id: str
    interaction_count: int
    document: str
    interactions_csv: str


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _document(encoded: dict[str, str]) -> str:
    """What `_json` writes for a dict, from its values already encoded (`_json` each).

    The interactions are encoded page by page while the next page is read; the document
    is then joined around them rather than encoded again whole.
    """
    return "{" + ", ".join(f"{_json(key)}: {value}" for key, value in sorted(encoded.items())) + "}"


def _encoded(entries: list[timeline_pb2.TimelineEntry]) -> tuple[list[str], list[_Row]]:
    """A page of interactions as the export writes them: each one's JSON and its CSV row."""
    return [_json(_plain(entry)) for entry in entries], [_row(entry) for entry in entries]


async def _collect(timeline: TimelineClient, tenant: str, customer_id: str) -> _Export:
    """The whole export of one (live) customer.

    Raises:
        GatewayError: ``NOT_FOUND`` when the tenant has no such customer.
    """
    [customer] = await timeline.get_customers(tenant, [customer_id])
    if customer is None:
        raise GatewayError(ErrorCode.NOT_FOUND, f"Customer {customer_id} not found.")
    live = customer.id
    interactions: list[str] = []
    rows: list[_Row] = []
    async for page in _pages(
        lambda after: timeline.list_interactions(
            tenant, live, page_size=_TIMELINE_PAGE, after=after or None
        ),
        lambda page: list(page.entries),
    ):
        # In a thread, leaving the event loop free: the next page is read meanwhile (and
        # other requests are served), not after this page's 200 conversions.
        encoded, page_rows = await asyncio.to_thread(_encoded, page)
        interactions += encoded
        rows += page_rows
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
    document = {
        "format": _json(EXPORT_FORMAT),
        "tenant": _json(tenant),
        "customer_id": _json(live),
        "profile": _json(profile),
        "identifiers": _json(profile.get("identifiers", [])),
        "consents": _json(profile.get("consents", [])),
        # Each with where the timeline put it: its case, when it was recorded.
        "interactions": "[" + ", ".join(interactions) + "]",
        "cases": _json([_plain(case) for case in cases]),
        "merge_history": _json([_plain(merge) for merge in merges]),
        "audit": _json([_plain(record) for record in audit]),
    }
    return _Export(live, len(rows), _document(document), _csv(rows))


def _row(entry: timeline_pb2.TimelineEntry) -> _Row:
    item = entry.interaction
    return (
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


def _csv(rows: Iterable[_Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


def interactions_csv(entries: list[timeline_pb2.TimelineEntry]) -> str:
    """The interactions as CSV, one row each, newest first (as the timeline lists them)."""
    return _csv(_row(entry) for entry in entries)


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
    collected = await _collect(context.timeline, tenant, checked)
    await recorder(context).record(
        [AccessKey(collected.customer_id, AccessKind.EXPORT, reason=why)]
    )
    return CustomerExport(
        customer_id=strawberry.ID(collected.customer_id),
        exported_at=datetime.now(UTC),
        interaction_count=collected.interaction_count,
        document=collected.document,
        interactions_csv=collected.interactions_csv,
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
