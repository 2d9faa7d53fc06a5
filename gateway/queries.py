"""The root query fields: customers, screen-pop, search, cases and merge suggestions."""

from __future__ import annotations

import strawberry

from gateway.cases import CaseFilter
from gateway.context import Info
from gateway.enums import IDENTIFIER_KINDS, IdentifierKind
from gateway.errors import bad_user_input
from gateway.nodes import (
    Case,
    CaseConnection,
    Customer,
    MergeSuggestion,
    load_case,
    load_customer,
    read_cases,
    read_suggestions,
)
from gateway.paging import check_first
from gateway.scalars import check_id
from tsunagu.v1 import interaction_pb2

# Longer than any e-mail address or phone number; stops abuse of the screen-pop field.
_MAX_IDENTIFIER_LENGTH = 512
# What the timeline's SearchCustomers accepts.
_MIN_SEARCH_LENGTH = 2
_MAX_SEARCH_RESULTS = 50


async def resolve_customer(info: Info, id: strawberry.ID) -> Customer | None:
    """Load one customer through the per-request DataLoader (batched with its siblings)."""
    if not id.strip():
        raise bad_user_input("`id` must not be empty.")
    return await load_customer(info, str(id))


async def resolve_customer_by_identifier(
    info: Info, kind: IdentifierKind, value: str, network: str | None = None
) -> Customer | None:
    """Resolve an identifier as typed by the agent; the timeline normalises it."""
    if not value.strip():
        raise bad_user_input("`value` must not be empty.")
    if len(value) > _MAX_IDENTIFIER_LENGTH:
        raise bad_user_input(f"`value` must be at most {_MAX_IDENTIFIER_LENGTH} characters.")
    if kind is IdentifierKind.SOCIAL_HANDLE and not network:
        raise bad_user_input("`network` is required for SOCIAL_HANDLE identifiers.")
    identifier = interaction_pb2.Identifier(
        kind=IDENTIFIER_KINDS.to_proto(kind), value=value, network=network or ""
    )
    context = info.context
    found = await context.timeline.resolve_identifier(context.principal.tenant, identifier)
    if found is None:
        return None
    # A later `customer(id:)` in the same operation then needs no second round trip.
    context.loaders.customers.prime(found.id, found)
    return Customer.from_proto(found)


async def resolve_search_customers(info: Info, query: str, first: int = 20) -> list[Customer]:
    """Customers by name prefix or identifier prefix; found customers prime the loader."""
    text = query.strip()
    if len(text) < _MIN_SEARCH_LENGTH:
        raise bad_user_input(f"`query` must have at least {_MIN_SEARCH_LENGTH} characters.")
    if len(text) > _MAX_IDENTIFIER_LENGTH:
        raise bad_user_input(f"`query` must be at most {_MAX_IDENTIFIER_LENGTH} characters.")
    check_first(first, _MAX_SEARCH_RESULTS)
    context = info.context
    found = await context.timeline.search_customers(context.principal.tenant, text, limit=first)
    for customer in found:
        context.loaders.customers.prime(customer.id, customer)
    return [Customer.from_proto(customer) for customer in found]


async def resolve_case(info: Info, id: strawberry.ID) -> Case | None:
    """One case by id, through the per-operation DataLoader."""
    return await load_case(info, check_id("id", id))


async def resolve_cases(
    info: Info,
    filter: CaseFilter | None = None,
    first: int = 20,
    after: str | None = None,
) -> CaseConnection:
    """Cases of the tenant matching ``filter`` (arguments as in the SDL)."""
    case_filter = (filter or CaseFilter()).to_proto()
    return await read_cases(info, case_filter, first=first, after=after)


async def resolve_merge_suggestions(info: Info, first: int = 50) -> list[MergeSuggestion]:
    """Every open merge suggestion of the tenant."""
    return await read_suggestions(info, customer_id=None, first=first)


@strawberry.type
class Query:
    customer: Customer | None = strawberry.field(
        resolver=resolve_customer,
        description="A customer by id; a merged-away id yields the surviving customer.",
    )
    customer_by_identifier: Customer | None = strawberry.field(
        resolver=resolve_customer_by_identifier,
        description="Screen-pop: the customer an identifier belongs to; null when unknown.",
    )
    search_customers: list[Customer] = strawberry.field(
        resolver=resolve_search_customers,
        description="Customers whose name or an identifier starts with `query` (first: 1-50).",
    )
    case: Case | None = strawberry.field(resolver=resolve_case, description="A case by id.")
    cases: CaseConnection = strawberry.field(
        resolver=resolve_cases,
        description="Cases matching `filter`, most recently updated first (first: 1-100).",
    )
    merge_suggestions: list[MergeSuggestion] = strawberry.field(
        resolver=resolve_merge_suggestions,
        description="Open merge suggestions of the tenant (first: 1-200).",
    )
