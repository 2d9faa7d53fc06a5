"""The gateway's GraphQL schema: root fields, limits and error codes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.types import ExecutionContext
from strawberry.utils.logging import StrawberryLogger

from gateway.cases import Case, CaseConnection, resolve_case, resolve_cases
from gateway.context import Info
from gateway.enums import IDENTIFIER_KINDS, IdentifierKind
from gateway.errors import ErrorCode, GatewayError, bad_user_input
from gateway.merges import MergeSuggestion, resolve_merge_suggestions
from gateway.mutations import Mutation
from gateway.settings import GatewaySettings
from gateway.subscriptions import Subscription
from gateway.types import Customer
from tsunagu.v1 import interaction_pb2

_log = logging.getLogger(__name__)

# Longer than any e-mail address or phone number; stops abuse of the screen-pop field.
_MAX_IDENTIFIER_LENGTH = 512
# What the timeline's SearchCustomers accepts.
_MIN_SEARCH_LENGTH = 2
_MAX_SEARCH_RESULTS = 50


async def resolve_customer(info: Info, id: strawberry.ID) -> Customer | None:
    """Load one customer through the per-request DataLoader (batched with its siblings)."""
    if not id.strip():
        raise bad_user_input("`id` must not be empty.")
    found = await info.context.loaders.customers.load(str(id))
    return None if found is None else Customer.from_proto(found)


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
    if not 1 <= first <= _MAX_SEARCH_RESULTS:
        raise bad_user_input(f"`first` must be between 1 and {_MAX_SEARCH_RESULTS}, got {first}.")
    context = info.context
    found = await context.timeline.search_customers(context.principal.tenant, text, limit=first)
    for customer in found:
        context.loaders.customers.prime(customer.id, customer)
    return [Customer.from_proto(customer) for customer in found]


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


def classify_error(error: GraphQLError) -> ErrorCode:
    """Decide the ``extensions.code`` of a GraphQL error.

    Args:
        error: An error from parsing, validation or execution.

    Returns:
        The code; ``INTERNAL_SERVER_ERROR`` marks the errors that get masked and logged.
    """
    if isinstance(error.original_error, GatewayError):
        return error.original_error.code
    if isinstance(error, GraphQLSyntaxError):
        # Also the token limit: graphql-core stops parsing with a syntax error.
        return ErrorCode.GRAPHQL_PARSE_FAILED
    if error.original_error is None and error.path is None:
        # Neither raised by a resolver nor tied to a result field: the document was refused
        # (unknown field, depth or alias limit, bad argument literal or variable).
        return ErrorCode.GRAPHQL_VALIDATION_FAILED
    return ErrorCode.INTERNAL_SERVER_ERROR


def _is_unexpected(error: GraphQLError) -> bool:
    return classify_error(error) is ErrorCode.INTERNAL_SERVER_ERROR


class _MaskUnexpectedErrors(MaskErrors):
    """Hides internals of unexpected errors; client-facing errors keep their message."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_is_unexpected, error_message="Internal server error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": ErrorCode.INTERNAL_SERVER_ERROR.value}
        return masked


class GatewaySchema(strawberry.Schema):
    """The schema, logging only the errors that are the gateway's problem."""

    def process_errors(
        self,
        errors: list[GraphQLError],
        execution_context: ExecutionContext | None = None,
    ) -> None:
        """Give every error an ``extensions.code``; log the unexpected ones with a traceback.

        Strawberry calls this for every result before it is sent, over HTTP and for each
        result of a subscription alike, so clients never parse messages.

        Args:
            errors: The operation's errors, before masking.
            execution_context: The operation.
        """
        for error in errors:
            extensions = error.extensions or {}
            if "code" not in extensions:
                error.extensions = {**extensions, "code": classify_error(error).value}
            if _is_unexpected(error):
                StrawberryLogger.error(error, execution_context)
            else:
                _log.debug("GraphQL client error: %s", error.message)


def build_schema(settings: GatewaySettings) -> GatewaySchema:
    """Build the schema with the limits and error policy of ``settings``.

    Args:
        settings: The gateway settings.

    Returns:
        The schema.
    """
    # Factories, not instances: each operation gets its own extension objects, which keep
    # per-operation state (the execution context) between their hooks.
    extensions: list[Callable[[], SchemaExtension]] = [
        partial(QueryDepthLimiter, max_depth=settings.max_query_depth),
        partial(MaxAliasesLimiter, max_alias_count=settings.max_aliases),
        partial(MaxTokensLimiter, max_token_count=settings.max_tokens),
    ]
    if settings.mask_errors:
        extensions.append(_MaskUnexpectedErrors)
    return GatewaySchema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions
    )
