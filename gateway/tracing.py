"""GraphQL operations and subscription pushes as spans, without arguments or documents."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager
from inspect import isawaitable
from typing import Any

from graphql import GraphQLResolveInfo
from opentelemetry import propagate, trace
from strawberry.extensions import LifecycleStep
from strawberry.extensions.tracing import OpenTelemetryExtension
from strawberry.extensions.tracing.utils import should_skip_tracing
from typing_extensions import override

from tsunagu.v1.notices_pb2 import TimelineUpdated

tracer = trace.get_tracer(__name__)


class OperationTracing(OpenTelemetryExtension):
    """Strawberry's OpenTelemetry extension, minus what could carry personal data.

    Strawberry records the operation's document and every resolver's arguments as span
    attributes; a screen-pop passes a phone number or an email address as an argument (or
    inline in the document), so neither is recorded: the operation's name and type are.
    Resolver spans, and the timeline calls under them, stay.
    """

    @override
    def on_operation(self) -> Generator[None, None, None]:
        name = self.execution_context.operation_name
        span = self._tracer.start_span(
            f"GraphQL {name or 'operation'}",
            kind=trace.SpanKind.SERVER,
            attributes={"component": "graphql", "graphql.operation.name": name or ""},
        )
        self._span_holder[LifecycleStep.OPERATION] = span
        try:
            yield
        finally:
            self._end(span)

    def _end(self, span: trace.Span) -> None:
        name = self.execution_context.operation_name
        if name:
            span.update_name(f"GraphQL {name}")
            span.set_attribute("graphql.operation.name", name)
        try:
            kind = self.execution_context.operation_type.value
        except RuntimeError:  # the document did not parse: there is no operation
            kind = ""
        span.set_attribute("graphql.operation.type", kind)
        span.end()

    @override
    def resolve(  # sync or async, as the resolver is
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo[Any],
        *args: str,
        **kwargs: Any,
    ) -> Any:
        """Trace a resolver; stays synchronous for synchronous resolvers.

        Strawberry's own `resolve` is a coroutine function, which makes every execution
        asynchronous: `execute_sync` (introspection, schema checks) would then fail.
        """
        if should_skip_tracing(_next, info):
            return _next(root, info, *args, **kwargs)
        span = self._tracer.start_span(
            f"GraphQL Resolving: {info.field_name}",
            context=trace.set_span_in_context(self._span_holder[LifecycleStep.OPERATION]),
        )
        self.add_tags(span, info, kwargs)
        with trace.use_span(span, end_on_exit=False):
            result = _next(root, info, *args, **kwargs)
        if isawaitable(result):
            return _awaited_in(span, result)
        span.end()
        return result

    @override
    def filter_resolver_args(
        self, args: dict[str, Any], info: GraphQLResolveInfo[Any]
    ) -> dict[str, Any]:
        return {}


async def _awaited_in(span: trace.Span, result: Awaitable[Any]) -> Any:
    # The resolver's body runs when awaited: the span must be current then, for the timeline
    # calls it makes to be its children.
    with trace.use_span(span, end_on_exit=True):
        return await result


@contextmanager
def push_span(notice: TimelineUpdated, headers: dict[str, str] | None) -> Iterator[trace.Span]:
    """The span of preparing one subscription push: a child of the notice's trace.

    Ended before the push is yielded to Strawberry: a span must not stay current across an
    async generator's yield, which resumes in another context.
    """
    with tracer.start_as_current_span(
        "subscription push",
        context=propagate.extract(headers or {}),
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "tsunagu.event_id": notice.event_id,
            "tsunagu.tenant": notice.tenant,
            "tsunagu.customer_id": notice.customer_id,
        },
    ) as span:
        yield span
