"""The gateway's GraphQL schema: its three roots, limits and error codes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from gateway.audit import audit_reads
from gateway.errors import ErrorCode, GatewayError
from gateway.insights import TopicMutation
from gateway.limits import OperationLimits, RateLimit
from gateway.masking_schema import mask_personal_fields
from gateway.metrics import OperationMetrics
from gateway.mutations import Mutation
from gateway.permissions import enforce
from gateway.privacy import PrivacyMutation, PrivacyQuery
from gateway.privacy_export import ExportQuery
from gateway.queries import Query
from gateway.settings import GatewaySettings
from gateway.subscription_caps import cap_subscriptions
from gateway.subscriptions import Subscription
from gateway.tracing import OperationTracing
from tsunagu.tracebacks import exception_name, frames_only

_log = logging.getLogger(__name__)


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
    """The schema: every field guarded by its role decision, only the gateway's errors logged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Wrapped once the executable schema exists: Strawberry builds its resolvers then.
        # The cap goes on first, so the role check wraps it: a refused role takes no slot.
        cap_subscriptions(self._schema)
        enforce(self._schema)
        # Outside the role check: a refused field is never resolved, so never masked either.
        mask_personal_fields(self._schema)
        # Outermost: a read is recorded in the audit before anything of it is served.
        audit_reads(self._schema)

    def process_errors(
        self,
        errors: list[GraphQLError],
        execution_context: ExecutionContext | None = None,
    ) -> None:
        """Give every error an ``extensions.code``; log the unexpected ones with their frames.

        Logged without messages: a GraphQL error can quote the variables it refused, and an
        unexpected error's text (or its cause's, a gRPC status) the data it failed on.

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
            code = (error.extensions or {}).get("code")
            if _is_unexpected(error):
                cause = error.original_error or error
                _log.error(
                    "unexpected error in operation %s at %s: %s\n%s",
                    execution_context.operation_name if execution_context else None,
                    error.path,
                    exception_name(cause),
                    frames_only(cause),
                )
            else:
                _log.debug("GraphQL client error %s at %s", code, error.path)


# The agent actions, and supervisors' topic mutations (gateway.insights), as one type.
_MUTATION = strawberry.type(
    type("Mutation", (Mutation, TopicMutation), {}),
    description=(
        "Agent actions; each becomes one event on the customer's timeline. And supervisors' "
        "topic changes."
    ),
)


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
        OperationLimits,
        RateLimit,
        OperationMetrics,
        OperationTracing,  # spans without arguments or documents
    ]
    if settings.mask_errors:
        extensions.append(_MaskUnexpectedErrors)
    return GatewaySchema(
        # The privacy fields live in their own module (gateway.privacy), merged in here.
        query=merge_types("Query", (Query, PrivacyQuery, ExportQuery)),
        mutation=merge_types("Mutation", (_MUTATION, PrivacyMutation)),
        subscription=Subscription,
        extensions=extensions,
    )
