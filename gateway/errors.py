"""Client-facing gateway errors, each carrying the ``extensions.code`` a UI can branch on."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Values of ``extensions.code`` in GraphQL errors (Apollo's names where they exist)."""

    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    TIMELINE_UNAVAILABLE = "TIMELINE_UNAVAILABLE"
    # The event bus (NATS JetStream) did not accept an agent action; retry with the same eventId.
    BUS_UNAVAILABLE = "BUS_UNAVAILABLE"
    # The timeline service is older than the gateway and lacks the RPC behind a field.
    NOT_SUPPORTED = "NOT_SUPPORTED"
    # A subscription's client read its updates too slowly; the subscription was ended.
    SLOW_CONSUMER = "SLOW_CONSUMER"
    # Over the caller's rate limit; nothing was executed. ``extensions.retryAfter`` says
    # after how many seconds to retry (HTTP: status 429 with a Retry-After header).
    RATE_LIMITED = "RATE_LIMITED"
    # A subscribe over the cap per connection or per principal; nothing was started.
    TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"
    # The read audit could not record an access to personal data, so nothing was served.
    AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE"
    # The insights service (service metrics, customers at risk) did not answer; retry.
    INSIGHTS_UNAVAILABLE = "INSIGHTS_UNAVAILABLE"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class GatewayError(Exception):
    """An error whose message is meant for the API client, never masked.

    graphql-core copies an original error's ``extensions`` onto the GraphQL error it
    reports, so raising this from a resolver is all it takes to set ``extensions.code``.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extensions: dict[str, object] = {"code": code.value}


def bad_user_input(message: str) -> GatewayError:
    """Build the error for an argument the client must change before retrying.

    Args:
        message: What is wrong with the input, phrased for the API user.

    Returns:
        A ``GatewayError`` with code ``BAD_USER_INPUT``.
    """
    return GatewayError(ErrorCode.BAD_USER_INPUT, message)
