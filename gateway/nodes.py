"""The agent's graph: customers, cases, interactions and merge suggestions, linked.

These four node types refer to each other (a case has a customer, a customer has cases,
...). Each feature module declares what its node *is* (``CustomerFields``, ``CaseFields``,
...); this module adds the links, so the feature modules never import each other and every
link resolver has the classes it builds at hand.
"""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from gateway import cases, merges, timeline
from gateway.cases import CaseFields
from gateway.context import Info
from gateway.customers import CustomerFields
from gateway.enums import CASE_STATUSES, CaseStatus, Channel, Kind
from gateway.merges import MergeRecord, MergeSuggestionFields
from gateway.paging import Connection, Edge, PageInfo
from gateway.scalars import check_id
from gateway.timeline import InteractionFields
from gateway.topics import Topic, interaction_topic
from tsunagu.v1 import timeline_pb2


async def load_customer(info: Info, customer_id: str) -> Customer | None:
    """One customer through the per-operation DataLoader (batched with its siblings)."""
    found = await info.context.loaders.customers.load(customer_id)
    return None if found is None else Customer.from_proto(found)


async def load_case(info: Info, case_id: str) -> Case | None:
    """One case through the per-operation DataLoader (batched with its siblings)."""
    found = await info.context.loaders.cases.load(case_id)
    return None if found is None else Case.from_proto(found)


async def _interaction_case(root: Interaction, info: Info) -> Case | None:
    return None if root.case_id is None else await load_case(info, str(root.case_id))


@strawberry.type(name="Interaction")
class Interaction(InteractionFields):
    case: Case | None = strawberry.field(
        resolver=_interaction_case,
        description="The case the interaction belongs to (batched).",
    )
    topic: Topic | None = strawberry.field(
        resolver=interaction_topic,
        description="What a customer's message is about (batched); null for other entries.",
    )


@strawberry.type(
    name="InteractionConnection", description="A page of a customer's timeline, newest first."
)
class InteractionConnection(Connection[Edge[Interaction]]):
    @classmethod
    def from_response(
        cls, response: timeline_pb2.ListInteractionsResponse
    ) -> InteractionConnection:
        """Convert one page of ``ListInteractions``."""
        edges = []
        for entry in response.entries:
            node = Interaction.from_entry(entry)
            if node is not None:
                edges.append(Edge(cursor=entry.cursor, node=node))
        return cls(
            edges=edges,
            page_info=PageInfo.forward(
                has_next_page=response.has_more,
                start=edges[0].cursor if edges else None,
                # The timeline's own continuation cursor wins: it also covers entries left out.
                end=response.next_cursor or (edges[-1].cursor if edges else None),
            ),
        )


async def _case_customer(root: Case, info: Info) -> Customer | None:
    return await load_customer(info, str(root.customer_id))


async def _case_timeline(
    root: Case, info: Info, first: int = 20, after: str | None = None
) -> InteractionConnection:
    page = await timeline.read_case_page(
        info, str(root.customer_id), str(root.id), first=first, after=after
    )
    return InteractionConnection.from_response(page)


@strawberry.type(
    name="Case", description="A customer's problem, across every channel it went through."
)
class Case(CaseFields):
    customer: Customer | None = strawberry.field(
        resolver=_case_customer, description="The customer (batched with siblings)."
    )
    timeline: InteractionConnection = strawberry.field(
        resolver=_case_timeline,
        description="The case's interactions, newest first (first: 1-100).",
    )


@strawberry.type
class CaseEdge:
    cursor: str | None = strawberry.field(
        description="Set on the last edge of a page only (the timeline pages by page, not by case)."
    )
    node: Case


@strawberry.type(name="CaseConnection", description="A page of cases, most recently updated first.")
class CaseConnection(Connection[CaseEdge]):
    @classmethod
    def from_response(cls, response: timeline_pb2.ListCasesResponse) -> CaseConnection:
        """Convert one page of ``ListCases``."""
        now = datetime.now(UTC)
        edges = [
            CaseEdge(cursor=None, node=Case.from_proto(case, now=now)) for case in response.cases
        ]
        end_cursor = response.next_cursor or None
        if edges:
            edges[-1].cursor = end_cursor
        return cls(
            edges=edges,
            page_info=PageInfo.forward(has_next_page=response.has_more, start=None, end=end_cursor),
        )


async def read_cases(
    info: Info, case_filter: timeline_pb2.CaseFilter, *, first: int, after: str | None
) -> CaseConnection:
    """One page of cases matching ``case_filter`` (see ``gateway.cases.read_page``)."""
    return CaseConnection.from_response(
        await cases.read_page(info, case_filter, first=first, after=after)
    )


async def _suggested_customers(root: MergeSuggestion, info: Info) -> list[Customer]:
    loaded = await info.context.loaders.customers.load_many([str(id_) for id_ in root.customer_ids])
    return [Customer.from_proto(found) for found in loaded if found is not None]


@strawberry.type(
    name="MergeSuggestion",
    description="Customers that look alike (soft signals); an agent accepts or dismisses.",
)
class MergeSuggestion(MergeSuggestionFields):
    customers: list[Customer] = strawberry.field(
        resolver=_suggested_customers,
        description="The customers (batched with every other customer of the query).",
    )


async def read_suggestions(
    info: Info, *, customer_id: str | None, first: int
) -> list[MergeSuggestion]:
    """Open merge suggestions of one customer or of the tenant (first: 1-200)."""
    found = await merges.read_suggestions(info, customer_id=customer_id, first=first)
    return [MergeSuggestion.from_proto(suggestion) for suggestion in found]


async def _open_case(root: Customer, info: Info) -> Case | None:
    return None if root.open_case_id is None else await load_case(info, str(root.open_case_id))


async def _customer_cases(
    root: Customer,
    info: Info,
    *,
    first: int = 20,
    after: str | None = None,
    statuses: list[CaseStatus] | None = None,
) -> CaseConnection:
    case_filter = timeline_pb2.CaseFilter(
        customer_id=str(root.id),
        statuses=[CASE_STATUSES.to_proto(status) for status in statuses or ()],
    )
    return await read_cases(info, case_filter, first=first, after=after)


async def _merge_history(root: Customer, info: Info) -> list[MergeRecord]:
    return await merges.read_merge_history(info, str(root.id))


async def _merge_suggestions(root: Customer, info: Info, first: int = 50) -> list[MergeSuggestion]:
    return await read_suggestions(info, customer_id=str(root.id), first=first)


async def _customer_timeline(
    root: Customer,
    info: Info,
    *,
    first: int = 20,
    after: str | None = None,
    channels: list[Channel] | None = None,
    kinds: list[Kind] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    case_id: strawberry.ID | None = None,
) -> InteractionConnection:
    page = await timeline.read_page(
        info,
        str(root.id),
        first=first,
        after=after,
        channels=channels,
        kinds=kinds,
        since=since,
        until=until,
        case_id=None if case_id is None else check_id("caseId", case_id),
    )
    return InteractionConnection.from_response(page)


@strawberry.type(name="Customer", description="One person across every channel.")
class Customer(CustomerFields):
    open_case: Case | None = strawberry.field(
        resolver=_open_case,
        description="The open case, with its SLA clocks and follow-ups (batched).",
    )
    cases: CaseConnection = strawberry.field(
        resolver=_customer_cases,
        description="The customer's cases, most recently updated first (first: 1-100).",
    )
    merge_history: list[MergeRecord] = strawberry.field(
        resolver=_merge_history,
        description="The identity ledger entries this customer took part in, oldest first.",
    )
    merge_suggestions: list[MergeSuggestion] = strawberry.field(
        resolver=_merge_suggestions,
        description="Open merge suggestions involving this customer (first: 1-200).",
    )
    timeline: InteractionConnection = strawberry.field(
        resolver=_customer_timeline,
        description="The customer's interactions on every channel, newest first.",
    )
