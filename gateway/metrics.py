"""GraphQL instruments: operation latency, errors by code, live subscriptions and their pushes."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from graphql import GraphQLError
from opentelemetry import metrics
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import StreamExecutionResult
from strawberry.types.graphql import OperationType

from tsunagu.metrics import seconds_histogram

_meter = metrics.get_meter(__name__)
_duration = seconds_histogram(
    _meter,
    "tsunagu.graphql.operation.duration",
    "Time to answer a query or mutation, by operation type (not by name: clients choose names).",
)
_errors = _meter.create_counter(
    "tsunagu.graphql.errors",
    unit="{error}",
    description="Errors in GraphQL results, by extensions.code and operation type.",
)
_active = _meter.create_up_down_counter(
    "tsunagu.graphql.subscriptions.active",
    unit="{subscription}",
    description="Subscriptions open now.",
)
_pushes = _meter.create_counter(
    "tsunagu.graphql.subscription.pushes",
    unit="{message}",
    description="Results pushed to subscribers.",
)


def _codes(errors: Iterable[GraphQLError] | None) -> Iterator[str]:
    # The schema's process_errors has given every error its code before extensions see it.
    for error in errors or ():
        yield str((error.extensions or {}).get("code", "UNKNOWN"))


class OperationMetrics(SchemaExtension):
    """Measures every operation; a subscription counts as active for as long as it runs."""

    def __init__(self) -> None:
        super().__init__()
        self._subscribed = False

    def _operation(self) -> str:
        try:
            return self.execution_context.operation_type.value
        except Exception:  # noqa: BLE001 - no document, or no such operation in it
            return "unknown"

    def _count_errors(self, errors: Iterable[GraphQLError] | None) -> None:
        operation = self._operation()
        for code in _codes(errors):
            _errors.add(1, {"code": code, "operation": operation})

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            if self._subscribed:
                _active.add(-1)
            else:
                operation = self._operation()
                _duration.record(time.perf_counter() - started, {"operation": operation})
                result = self.execution_context.result
                self._count_errors(result.errors if result is not None else None)

    def on_validate(self) -> Iterator[None]:
        yield
        # Parsed and valid: only now is the operation type known, and the subscription starts.
        if self._operation() == OperationType.SUBSCRIPTION.value:
            self._subscribed = True
            _active.add(1)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        if self._subscribed:
            _pushes.add(1)
            self._count_errors(getattr(result, "errors", None))
        yield
