"""Operation limits: mutations per operation and the query-cost budget, before execution."""

from __future__ import annotations

import time

import pytest

from gateway.limits import MAX_MUTATIONS_PER_OPERATION
from gateway.schema import GatewaySchema
from gateway.timeline_client import TimelineClient
from tests.unit.test_gateway_schema import (
    FakeTimeline,
    data,
    error_codes,
    fake,
    fake_server,
    run,
    schema,
    timeline,
)

__all__ = ["fake", "fake_server", "schema", "timeline"]  # fixtures shared with the schema tests

# Within the depth, alias and token limits: only the cost budget stands in the way.
NESTED_TIMELINES = """
query ($outer: Int!, $inner: Int!) {
  customer(id: "c-1") {
    timeline(first: $outer) { edges { node { text case { timeline(first: $inner) {
      edges { node { eventId text } } } } } } }
  }
}
"""
NESTED_IN_FRAGMENTS = """
fragment Entry on Interaction { text case { ...CaseTimeline } }
fragment CaseTimeline on Case { timeline(first: 100) { edges { node { eventId text } } } }
{ customer(id: "c-1") { timeline(first: 100) { edges { node { ...Entry } } } } }
"""


def _notes(count: int) -> str:
    notes = " ".join(
        f'n{i}: addNote(customerId: "c-1", text: "x") {{ eventId }}' for i in range(count)
    )
    return f"mutation {{ {notes} }}"


async def test_more_mutations_than_the_cap_are_refused_before_any_runs(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    result = await run(schema, timeline, _notes(MAX_MUTATIONS_PER_OPERATION + 2))

    assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    assert result.errors is not None
    assert "at most 3 mutations" in result.errors[0].message
    assert fake.requests == {}


async def test_mutations_up_to_the_cap_run(schema: GatewaySchema, timeline: TimelineClient) -> None:
    # No bus in this context: a mutation that runs answers BUS_UNAVAILABLE, and a failed
    # non-null mutation ends the (serial) operation.
    result = await run(schema, timeline, _notes(MAX_MUTATIONS_PER_OPERATION))

    assert error_codes(result) == ["BUS_UNAVAILABLE"]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param(NESTED_TIMELINES, {"outer": 100, "inner": 100}, id="variables"),
        pytest.param(NESTED_IN_FRAGMENTS, None, id="fragments"),
    ],
)
async def test_nested_timelines_over_the_cost_budget_are_refused_quickly_and_read_nothing(
    schema: GatewaySchema,
    timeline: TimelineClient,
    fake: FakeTimeline,
    query: str,
    variables: dict[str, int] | None,
) -> None:
    started = time.monotonic()

    result = await run(schema, timeline, query, variables)

    assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    assert result.errors is not None
    assert "over the budget" in result.errors[0].message
    assert fake.requests == {}
    assert time.monotonic() - started < 5


async def test_small_nested_pages_stay_within_the_budget(
    schema: GatewaySchema, timeline: TimelineClient
) -> None:
    result = await run(schema, timeline, NESTED_TIMELINES, {"outer": 20, "inner": 5})

    assert data(result)["customer"]["timeline"]["edges"]
