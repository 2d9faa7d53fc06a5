"""The root query fields: customers, screen-pop, search, cases and merge suggestions."""

from __future__ import annotations

import strawberry

from gateway.cases import CaseFilter
from gateway.context import Info
from gateway.enums import IDENTIFIER_KINDS, IdentifierKind
from gateway.erasure import ErasureStatus, resolve_erasure_status
from gateway.errors import ErrorCode, GatewayError, bad_user_input
from gateway.insights import (
    CustomerAtRisk,
    KnowledgeArticle,
    MetricCases,
    ServiceMetrics,
    SimilarCase,
    VocTopics,
    resolve_customers_at_risk,
    resolve_knowledge_articles,
    resolve_metric_cases,
    resolve_service_metrics,
    resolve_similar_resolved_cases,
    resolve_voc_topics,
)
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
from gateway.permissions import Operation, may
from gateway.scalars import check_id
from tsunagu.v1 import interaction_pb2

# Longer than any e-mail address or phone number; stops abuse of the screen-pop field.
_MAX_IDENTIFIER_LENGTH = 512
# Searching is a way to page through the customer base: short prefixes and long pages are
# refused, so a search finds a customer rather than lists them.
_MIN_SEARCH_LENGTH = 3
_MAX_SEARCH_RESULTS = 20
# A phone-number prefix ("+8", "090") matches a country or a carrier, not a person.
_MIN_PHONE_DIGITS = 6
_PHONE_CHARACTERS = frozenset("+0123456789 -().")


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
    if set(text) <= _PHONE_CHARACTERS and sum(c.isdigit() for c in text) < _MIN_PHONE_DIGITS:
        raise bad_user_input(
            f"A phone number `query` must have at least {_MIN_PHONE_DIGITS} digits."
        )
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
    """Cases of the tenant matching ``filter`` (arguments as in the SDL).

    Without ``LIST_ALL_CASES`` (an agent) the filter must name a customer or the caller as
    the owner: an agent works a customer's cases or its own queue, not everyone's.
    """
    case_filter = (filter or CaseFilter()).to_proto()
    principal = info.context.principal
    if not may(principal, Operation.LIST_ALL_CASES) and not (
        case_filter.customer_id or case_filter.owner_agent_id == principal.subject
    ):
        raise GatewayError(
            ErrorCode.FORBIDDEN,
            "Your roles allow listing your own cases (`ownerAgentId`) or one customer's "
            "(`customerId`) only.",
        )
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
        description=(
            "Customers whose name or an identifier starts with `query` (at least 3 "
            "characters, a phone number at least 6 digits; first: 1-20)."
        ),
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
    service_metrics: ServiceMetrics = strawberry.field(
        resolver=resolve_service_metrics,
        description=(
            "Service metrics of the cases opened in [since, until) (at most 366 days), per "
            "period and group; docs/insights.md defines every figure."
        ),
    )
    metric_cases: MetricCases = strawberry.field(
        resolver=resolve_metric_cases,
        description=(
            "The cases behind one figure of one row (first: 1-200); `csv` exports all of "
            "them, one row per case."
        ),
    )
    voc_topics: VocTopics = strawberry.field(
        resolver=resolve_voc_topics,
        description="What customers write about, by topic, with trend and figures (≤ 366 days).",
    )
    similar_resolved_cases: list[SimilarCase] = strawberry.field(
        resolver=resolve_similar_resolved_cases,
        description="Resolved cases like this one, with what solved them (first: 1-50).",
    )
    knowledge_articles: list[KnowledgeArticle] = strawberry.field(
        resolver=resolve_knowledge_articles,
        description="Knowledge articles matching a free-text query (first: 1-50).",
    )
    customers_at_risk: list[CustomerAtRisk] = strawberry.field(
        resolver=resolve_customers_at_risk,
        description="Customers at risk, highest score first, with reasons (first: 1-200).",
    )
    erasure_status: ErasureStatus | None = strawberry.field(
        resolver=resolve_erasure_status,
        description="Erasures of a customer, and whether it met an erased person's identifier.",
    )
