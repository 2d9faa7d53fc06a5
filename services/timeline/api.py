"""gRPC TimelineService: a thin translator between requests and the store."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sized
from datetime import UTC, datetime

import grpc
import phonenumbers
from opentelemetry import trace

from services.timeline.cases.documents import CASE_STATUS_TOKENS, case_to_proto
from services.timeline.cases.store import CaseQuery
from services.timeline.cursor import InvalidCursorError, decode_cursor, encode_cursor
from services.timeline.identity.documents import MergeEntry
from services.timeline.identity.events import actor_to_proto
from services.timeline.identity.resolver import IdentityResolver
from services.timeline.identity.suggestions import MergeSuggestions
from services.timeline.interactions.entries import entry_to_proto
from services.timeline.interactions.model import InteractionDoc
from services.timeline.profiles.model import CustomerDoc
from services.timeline.search_keys import identifier_prefixes, name_key
from services.timeline.store.documents import (
    KIND_TOKENS,
    aware,
    channel_token,
    customer_to_proto,
    identifier_to_proto,
    to_timestamp,
)
from services.timeline.stores import TimelineStore
from tsunagu.contracts import ContractViolation, check_tenant
from tsunagu.identifiers import IdentifierFormatError, normalize_identifier
from tsunagu.rpc import MAX_RESPONSE_BYTES
from tsunagu.v1 import timeline_pb2, timeline_pb2_grpc

tracer = trace.get_tracer(__name__)

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_IDS = 500
MAX_ID_LENGTH = 256
# What entries may fill in one response: the send limit less room for the cursor and flags.
ENTRY_BUDGET_BYTES = MAX_RESPONSE_BYTES - 4096


async def _invalid(context: grpc.aio.ServicerContext[object, object], message: str) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)


async def _at_most(
    ids: Sized, name: str, context: grpc.aio.ServicerContext[object, object]
) -> None:
    """Refuse a request naming more than `MAX_IDS` ids in its field `name`."""
    if len(ids) > MAX_IDS:
        await _invalid(context, f"{name}: at most {MAX_IDS} per call")


def _framed_size(entry: timeline_pb2.TimelineEntry) -> int:
    """Bytes an entry adds to a repeated field: its size plus tag and length prefix."""
    return entry.ByteSize() + 6


def _fill(docs: list[InteractionDoc], entries: list[timeline_pb2.TimelineEntry], size: int) -> bool:
    """Append up to `size` of `docs` to `entries` within the byte budget; True if any left.

    A page stops early rather than outgrow the response limit (the rest comes with the
    cursor); the first entry always fits, since the contract bounds every event well below.
    """
    used = 0
    for doc in docs[:size]:
        entry = entry_to_proto(doc)
        used += _framed_size(entry)
        if entries and used > ENTRY_BUDGET_BYTES:
            return True
        entries.append(entry)
    return len(docs) > size


async def _page_request(
    page_size: int, after: str, context: grpc.aio.ServicerContext[object, object]
) -> tuple[int, tuple[datetime, str] | None]:
    """The page size (default 50, 1..200) and decoded cursor of a paged request."""
    size = page_size or DEFAULT_PAGE
    if not 1 <= size <= MAX_PAGE:
        await _invalid(context, f"page_size: between 1 and {MAX_PAGE}")
    before = None
    if after:
        try:
            before = decode_cursor(after)
        except InvalidCursorError:
            await _invalid(context, "after: not a cursor issued by this service")
    return size, before


def merge_to_proto(entry: MergeEntry) -> timeline_pb2.MergeRecord:
    """A ledger entry as the API shows it: who, when, why, on what evidence, and any split."""
    evidence = entry["evidence"]
    record = timeline_pb2.MergeRecord(
        id=entry["_id"],
        survivor_id=entry["survivor_id"],
        merged_ids=entry["merged_ids"],
        rule=entry["rule"],
        actor=actor_to_proto(entry["actor"]),
        at=to_timestamp(entry["at"]),
        status=entry["status"],
        evidence_event_id=evidence["event_id"],
        evidence=[
            timeline_pb2.LinkedIdentifier(
                identifier=identifier_to_proto(ident), customer_id=ident["customer_id"]
            )
            for ident in evidence["identifiers"]
        ],
        reason=entry["reason"],
    )
    if split := entry.get("split"):
        record.split_at.CopyFrom(to_timestamp(split["at"]))
        record.split_by.CopyFrom(actor_to_proto(split["actor"]))
        record.split_reason = split["reason"]
    return record


def _survivors_by_merged_id(live: dict[str, CustomerDoc]) -> dict[str, CustomerDoc]:
    """Each merged-away customer id → the live customer it now belongs to."""
    return {merged: doc for doc in live.values() for merged in doc.get("merged_ids", [])}


class TimelineApi(timeline_pb2_grpc.TimelineServiceServicer):
    """Read API over the timeline store; merged customer ids resolve to their survivor."""

    def __init__(
        self,
        store: TimelineStore,
        resolver: IdentityResolver,
        *,
        region_for: Callable[[str], str],
        suggestions: MergeSuggestions,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._interactions = store.interactions
        self._customers = store.customers
        self._identities = store.identities
        self._cases = store.cases
        self._resolver = resolver
        self._region_for = region_for
        self._suggestions = suggestions
        self._clock = clock

    async def _customer(
        self,
        tenant: str,
        customer_id: str,
        context: grpc.aio.ServicerContext[object, object],
        *,
        opened: bool = True,
    ) -> CustomerDoc:
        """The live customer `customer_id` is now (merges followed); NOT_FOUND if none.

        `opened=False`: as stored, for ids and merge pointers only (no data key asked for).
        """
        live = await self._resolver.live_customers(tenant, {customer_id}, opened=opened)
        if not live:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such customer")
        return next(iter(live.values()))

    async def _tenant(self, tenant: str, context: grpc.aio.ServicerContext[object, object]) -> str:
        try:
            return check_tenant(tenant)
        except ContractViolation as exc:
            await _invalid(context, str(exc))
            raise

    async def ResolveIdentifier(
        self,
        request: timeline_pb2.ResolveIdentifierRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> timeline_pb2.ResolveIdentifierResponse:
        tenant = await self._tenant(request.tenant, context)
        policy = self._resolver.policy_for(tenant)
        try:
            ident = normalize_identifier(request.identifier, default_region=policy.region)
        except IdentifierFormatError as exc:
            await _invalid(context, f"identifier.value: {exc}")
            raise
        key = policy.key(ident)
        docs = await self._identities.identity_docs(tenant, [key])
        # A blocklisted or shared identifier names nobody in particular: no screen-pop.
        limit = policy.max_customers_per_identifier
        owners = {
            doc["customer_id"]
            for doc in docs.values()
            if len(doc.get("customer_ids") or [doc["customer_id"]]) <= limit
        }
        live = await self._resolver.live_customers(tenant, owners)
        if not ident.matchable or policy.blocklisted(key) or not live:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no customer has this identifier")
        return timeline_pb2.ResolveIdentifierResponse(
            customer=customer_to_proto(next(iter(live.values())))
        )

    async def GetCustomers(
        self,
        request: timeline_pb2.GetCustomersRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> timeline_pb2.GetCustomersResponse:
        tenant = await self._tenant(request.tenant, context)
        await _at_most(request.customer_ids, "customer_ids", context)
        docs = await self._customers.get_customers(tenant, request.customer_ids)
        survivors_needed = {d["merged_into"] for d in docs.values() if d.get("merged_into")}
        live = await self._resolver.live_customers(tenant, survivors_needed)
        by_merged = _survivors_by_merged_id(live)
        response = timeline_pb2.GetCustomersResponse()
        for customer_id in request.customer_ids:
            found = docs.get(customer_id)
            if found is not None and found.get("merged_into"):
                found = by_merged.get(customer_id)
            response.customers.append(
                customer_to_proto(found) if found is not None else timeline_pb2.Customer()
            )
        return response

    async def ListInteractions(
        self,
        request: timeline_pb2.ListInteractionsRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> timeline_pb2.ListInteractionsResponse:
        tenant = await self._tenant(request.tenant, context)
        size, before = await _page_request(request.page_size, request.after, context)
        try:
            since = request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None
            until = request.until.ToDatetime(tzinfo=UTC) if request.HasField("until") else None
        except (ValueError, OverflowError):
            await _invalid(context, "since/until: timestamps out of range")
            raise
        # Only its id and merge pointers are needed, never sealed: nothing of the profile is
        # opened, so the keys of the customer and of those merged into it (their entries are
        # sealed under their own keys) are one query, read alongside the page.
        customer = await self._customer(tenant, request.customer_id, context, opened=False)
        customer_id: str = customer["_id"]
        docs = await self._interactions.list_interactions(
            tenant,
            customer_id,
            key_owners=customer.get("merged_ids", []),
            limit=size + 1,
            before=before,
            channels=[channel_token(c) for c in request.channels],
            kinds=[KIND_TOKENS.get(k, "unspecified") for k in request.kinds],
            since=since,
            until=until,
            case_id=request.case_id,
        )
        entries: list[timeline_pb2.TimelineEntry] = []
        has_more = _fill(docs, entries, size)
        response = timeline_pb2.ListInteractionsResponse(entries=entries, has_more=has_more)
        if response.entries:
            response.next_cursor = response.entries[-1].cursor
        return response

    # -- identity: merge history and suggestions (issue 3) ------------------------------------

    async def GetMergeHistory(
        self,
        request: timeline_pb2.GetMergeHistoryRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> timeline_pb2.GetMergeHistoryResponse:
        tenant = await self._tenant(request.tenant, context)
        if not request.customer_id or len(request.customer_id) > MAX_ID_LENGTH:
            await _invalid(context, f"customer_id: required, at most {MAX_ID_LENGTH} characters")
        customer = await self._customer(tenant, request.customer_id, context)
        ids = [customer["_id"], *customer.get("merged_ids", [])]
        if request.customer_id not in ids:
            ids.append(request.customer_id)
        entries = await self._identities.merges_involving(tenant, ids)
        return timeline_pb2.GetMergeHistoryResponse(merges=[merge_to_proto(e) for e in entries])

    async def ListMergeSuggestions(
        self,
        request: timeline_pb2.ListMergeSuggestionsRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> timeline_pb2.ListMergeSuggestionsResponse:
        tenant = await self._tenant(request.tenant, context)
        limit = request.limit or DEFAULT_PAGE
        if not 1 <= limit <= MAX_PAGE:
            await _invalid(context, f"limit: between 1 and {MAX_PAGE}")
        if len(request.customer_id) > MAX_ID_LENGTH:
            await _invalid(context, f"customer_id: at most {MAX_ID_LENGTH} characters")
        ids: list[str] = []
        if request.customer_id:
            customer = await self._customer(tenant, request.customer_id, context)
            ids = [customer["_id"], *customer.get("merged_ids", [])]
        docs = await self._suggestions.open_for(tenant, ids, limit)
        # Suggestions whose customers have since been merged (into one) are moot.
        target = await self._resolver.survivor_ids(
            tenant, {c for d in docs for c in d["customer_ids"]}
        )
        response = timeline_pb2.ListMergeSuggestionsResponse()
        for doc in docs:
            live_ids = list(dict.fromkeys(target.get(c, "") for c in doc["customer_ids"]))
            if len(live_ids) < 2 or "" in live_ids:
                continue
            response.suggestions.append(
                timeline_pb2.MergeSuggestion(
                    id=doc["_id"],
                    customer_ids=live_ids,
                    signals=doc.get("signals", []),
                    created_at=to_timestamp(doc.get("created_at")),
                    status=doc["status"],
                )
            )
        return response

    async def GetInteractions(
        self,
        request: timeline_pb2.GetInteractionsRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> timeline_pb2.GetInteractionsResponse:
        tenant = await self._tenant(request.tenant, context)
        await _at_most(request.event_ids, "event_ids", context)
        docs = {
            d["event_id"]: d
            for d in await self._interactions.get_interactions(tenant, request.event_ids)
        }
        target = await self._resolver.survivor_ids(
            tenant, {d["customer_id"] for d in docs.values()}
        )
        response = timeline_pb2.GetInteractionsResponse()
        used = 0
        for event_id in dict.fromkeys(request.event_ids):
            doc = docs.get(event_id)
            if doc is not None:
                entry = entry_to_proto(doc)
                stored_on: str = doc["customer_id"]
                entry.customer_id = target.get(stored_on, stored_on)
                used += _framed_size(entry)
                if used > ENTRY_BUDGET_BYTES:
                    # Leaving entries out would read as "not stored": refuse plainly instead.
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"event_ids: the events exceed {MAX_RESPONSE_BYTES} bytes; ask for fewer",
                    )
                response.entries.append(entry)
        return response

    async def LookupEvents(
        self,
        request: timeline_pb2.LookupEventsRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> timeline_pb2.LookupEventsResponse:
        tenant = await self._tenant(request.tenant, context)
        await _at_most(request.event_ids, "event_ids", context)
        docs = await self._interactions.lookup_events(tenant, request.event_ids)
        stored_on: dict[str, str] = {d["event_id"]: d["customer_id"] for d in docs}
        target = await self._resolver.survivor_ids(tenant, set(stored_on.values()))
        return timeline_pb2.LookupEventsResponse(
            found=[
                timeline_pb2.LookupEventsResponse.Found(
                    event_id=event_id, customer_id=target.get(customer_id, customer_id)
                )
                for event_id, customer_id in stored_on.items()
            ]
        )

    # -- cases and search (issue 4) ------------------------------------------------------------

    async def SearchCustomers(
        self,
        request: timeline_pb2.SearchCustomersRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> timeline_pb2.SearchCustomersResponse:
        tenant = await self._tenant(request.tenant, context)
        query = request.query
        if len(query) > MAX_SEARCH_CHARS:
            await _invalid(context, f"query: at most {MAX_SEARCH_CHARS} characters")
        if any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn"} for c in query):
            await _invalid(context, "query: control or invisible characters")
        if len(unicodedata.normalize("NFKC", query).strip()) < MIN_SEARCH_CHARS:
            await _invalid(context, f"query: at least {MIN_SEARCH_CHARS} characters")
        limit = request.limit or DEFAULT_SEARCH_LIMIT
        if not 1 <= limit <= MAX_SEARCH_LIMIT:
            await _invalid(context, f"limit: between 1 and {MAX_SEARCH_LIMIT}")
        found: dict[str, CustomerDoc] = {}
        key = name_key(query)
        if len(key) >= MIN_SEARCH_CHARS:
            for doc in await self._customers.by_name_prefix(tenant, key, limit=limit):
                found[doc["_id"]] = doc
        region = self._region_for(tenant)
        owners = await self._identities.owners_by_identifier_prefix(
            tenant,
            identifier_prefixes(query, country_code=phonenumbers.country_code_for_region(region)),
            limit=limit * 2,
        )
        # Identities are re-pointed by merges; following merged_into covers one in flight.
        found.update(await self._resolver.live_customers(tenant, set(owners)))
        ranked = sorted(
            found.values(),
            key=lambda d: (aware(d.get("last_contact_at") or _EPOCH), d["_id"]),
            reverse=True,
        )
        return timeline_pb2.SearchCustomersResponse(
            customers=[customer_to_proto(d) for d in ranked[:limit]]
        )

    async def GetCases(
        self,
        request: timeline_pb2.GetCasesRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> timeline_pb2.GetCasesResponse:
        tenant = await self._tenant(request.tenant, context)
        await _at_most(request.case_ids, "case_ids", context)
        docs = await self._cases.get(tenant, request.case_ids)
        return timeline_pb2.GetCasesResponse(
            cases=[
                case_to_proto(docs[case_id]) if case_id in docs else timeline_pb2.Case()
                for case_id in request.case_ids
            ]
        )

    async def ListCases(
        self,
        request: timeline_pb2.ListCasesRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> timeline_pb2.ListCasesResponse:
        tenant = await self._tenant(request.tenant, context)
        size, before = await _page_request(request.page_size, request.after, context)
        f = request.filter
        unknown = [s for s in f.statuses if s not in CASE_STATUS_TOKENS]
        if unknown:
            await _invalid(context, f"filter.statuses: unknown status {unknown[0]}")
        for name, value in (("owner_agent_id", f.owner_agent_id), ("customer_id", f.customer_id)):
            if len(value) > MAX_ID_CHARS:
                await _invalid(context, f"filter.{name}: at most {MAX_ID_CHARS} characters")
        customer_id = ""
        if f.customer_id:
            live = await self._resolver.live_customers(tenant, {f.customer_id})
            if not live:
                return timeline_pb2.ListCasesResponse()
            customer_id = next(iter(live))
        docs = await self._cases.find(
            tenant,
            CaseQuery(
                statuses=[CASE_STATUS_TOKENS[s] for s in dict.fromkeys(f.statuses)],
                owner_agent_id=f.owner_agent_id,
                escalated_only=f.escalated_only,
                follow_up_due_before=self._clock() if f.overdue_follow_ups_only else None,
                customer_id=customer_id,
                before=before,
                limit=size + 1,
            ),
        )
        response = timeline_pb2.ListCasesResponse(
            cases=[case_to_proto(d) for d in docs[:size]], has_more=len(docs) > size
        )
        if response.has_more:
            last = docs[size - 1]
            response.next_cursor = encode_cursor(aware(last["updated_at"]), last["_id"])
        return response


MIN_SEARCH_CHARS = 2
MAX_SEARCH_CHARS = 100
DEFAULT_SEARCH_LIMIT = 20
MAX_SEARCH_LIMIT = 50
MAX_ID_CHARS = 256
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
