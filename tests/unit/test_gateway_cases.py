"""Cases, search and the identity ledger through GraphQL, against the real-gRPC fake timeline."""

from __future__ import annotations

from typing import Any

import pytest
from strawberry.types import ExecutionResult

from gateway.auth import Principal
from gateway.schema import GatewaySchema
from gateway.timeline_client import TimelineClient
from tests.unit.test_gateway_schema import (
    TENANT,
    FakeTimeline,
    data,
    error_codes,
    fake,
    fake_server,
    schema,
    timeline,
)
from tests.unit.test_gateway_schema import run as run_as
from tsunagu.v1 import timeline_pb2

__all__ = ["fake", "fake_server", "schema", "timeline"]  # fixtures shared with the schema tests

# Case lists across agents, search and the identity ledger are a supervisor's
# (gateway.permissions); what other roles get is tested in test_gateway_permissions.
SUPERVISOR = Principal(subject="lead-2", tenant=TENANT, roles=frozenset({"agent", "supervisor"}))


async def run(
    schema: GatewaySchema,
    timeline: TimelineClient,
    query: str,
    variables: dict[str, Any] | None = None,
) -> ExecutionResult:
    """Execute one operation as a supervisor."""
    return await run_as(schema, timeline, query, variables, principal=SUPERVISOR)


CASE_FIELDS = """
    id customerId status ownerAgentId queue department escalationLevel escalationReason
    channels lastChannel openedAt updatedAt firstResponseAt resolvedAt
    firstResponseTimeSeconds timeToResolutionSeconds reopenCount tags
    csat { score comment }
    cancellationRequest { reason reasonDetail }
    cancellationOutcome
    followUps { id agentId reason createdByEventId dueAt done doneAt doneByEventId overdue }
    lastHandoff { toChannel summary openQuestions }
    interactionCount resolutionSummary
    customer { id displayName }
"""


async def test_case_maps_status_sla_clocks_follow_ups_and_its_customer(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    result = await run(schema, timeline, f'{{ case(id: "case-1") {{ {CASE_FIELDS} }} }}')

    case = data(result)["case"]
    assert case == {
        "id": "case-1",
        "customerId": "c-1",
        "status": "ESCALATED",
        "ownerAgentId": "agent-7",
        "queue": "subscriptions",
        "department": "billing",
        "escalationLevel": 2,
        "escalationReason": "Charged twice",
        "channels": ["CHAT", "VOICE"],
        "lastChannel": "VOICE",
        "openedAt": "2025-03-01T09:00:00+00:00",
        "updatedAt": "2025-03-02T10:30:00+00:00",
        "firstResponseAt": "2025-03-01T09:02:30+00:00",
        "resolvedAt": None,
        "firstResponseTimeSeconds": 150.0,
        "timeToResolutionSeconds": 90061.5,
        "reopenCount": 1,
        "tags": ["billing", "refund"],
        "csat": {"score": 4, "comment": "Quick, thanks"},
        "cancellationRequest": {"reason": "OTHER", "reasonDetail": "Moving abroad"},
        "cancellationOutcome": "RETAINED",
        "followUps": [
            {
                "id": "task-late",
                "agentId": "agent-7",
                "reason": "Call back after billing checked",
                "createdByEventId": "ev-transfer",
                "dueAt": "2025-03-02T10:00:00+00:00",
                "done": False,
                "doneAt": None,
                "doneByEventId": None,
                "overdue": True,
            },
            {
                "id": "task-future",
                "agentId": "agent-7",
                "reason": None,
                "createdByEventId": None,
                "dueAt": "2999-01-01T00:00:00+00:00",
                "done": False,
                "doneAt": None,
                "doneByEventId": None,
                "overdue": False,
            },
            {
                "id": "task-done",
                "agentId": None,
                "reason": None,
                "createdByEventId": None,
                "dueAt": "2025-03-02T10:00:00+00:00",
                "done": True,
                "doneAt": "2025-03-02T09:00:00+00:00",
                "doneByEventId": "ev-done",
                "overdue": False,
            },
        ],
        "lastHandoff": {
            "toChannel": "VOICE",
            "summary": "Call her back",
            "openQuestions": ["Plan?"],
        },
        "interactionCount": 7,
        "resolutionSummary": None,
        "customer": {"id": "c-1", "displayName": "Yamada Hanako"},
    }
    [request] = fake.calls("GetCases")
    assert (request.tenant, list(request.case_ids)) == (TENANT, ["case-1"])


async def test_unknown_case_is_null(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    result = await run(schema, timeline, '{ case(id: "nope") { id } }')

    assert data(result) == {"case": None}


FIFTY_CASES = """
query ($filter: CaseFilter, $after: String) {
  cases(filter: $filter, first: 50, after: $after) {
    edges { cursor node { id status customer { id displayName openCase { id status } } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_fifty_cases_with_customers_and_open_cases_take_three_timeline_calls(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    result = await run(schema, timeline, FIFTY_CASES)

    connection = data(result)["cases"]
    assert len(connection["edges"]) == 50
    first = connection["edges"][0]["node"]
    assert first["customer"]["openCase"] == {"id": "open-1", "status": "OPEN"}
    assert connection["pageInfo"] == {"hasNextPage": True, "endCursor": "50"}
    assert [edge["cursor"] for edge in connection["edges"]][-2:] == [None, "50"]
    # One ListCases, one GetCustomers for the 12 distinct customers, one GetCases for their
    # 12 open cases: the fan-out is batched, whatever the page size.
    assert {method: len(calls) for method, calls in fake.requests.items()} == {
        "ListCases": 1,
        "GetCustomers": 1,
        "GetCases": 1,
    }
    assert len(fake.calls("GetCustomers")[0].customer_ids) == 12
    assert len(fake.calls("GetCases")[0].case_ids) == 12


async def test_cases_filter_and_cursor_reach_the_timeline(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    variables = {
        "filter": {
            "statuses": ["OPEN", "ESCALATED"],
            "ownerAgentId": "agent-7",
            "escalatedOnly": True,
            "overdueFollowUpsOnly": True,
            "customerId": "c-1",
        },
        "after": "0",
    }
    result = await run(schema, timeline, FIFTY_CASES, variables)

    assert data(result)["cases"]["pageInfo"]["hasNextPage"] is False
    [request] = fake.calls("ListCases")
    assert request.tenant == TENANT
    assert (request.page_size, request.after) == (50, "0")
    assert request.filter == timeline_pb2.CaseFilter(
        statuses=[timeline_pb2.CASE_STATUS_OPEN, timeline_pb2.CASE_STATUS_ESCALATED],
        owner_agent_id="agent-7",
        escalated_only=True,
        overdue_follow_ups_only=True,
        customer_id="c-1",
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("{ cases(first: 0) { pageInfo { hasNextPage } } }", "between 1 and 100"),
        ("{ cases(first: 101) { pageInfo { hasNextPage } } }", "between 1 and 100"),
        ('{ cases(filter: {customerId: " "}) { pageInfo { hasNextPage } } }', "customerId"),
        ('{ searchCustomers(query: "ya") { id } }', "at least 3 characters"),
        ('{ searchCustomers(query: "yam", first: 21) { id } }', "between 1 and 20"),
        ('{ searchCustomers(query: "+8", first: 20) { id } }', "at least 3 characters"),
        ('{ searchCustomers(query: "+81 90", first: 20) { id } }', "at least 6 digits"),
        ('{ searchCustomers(query: "090-12") { id } }', "at least 6 digits"),
        ('{ case(id: "") { id } }', "`id` must not be empty"),
        ("{ mergeSuggestions(first: 0) { id } }", "between 1 and 200"),
    ],
)
async def test_bad_arguments_are_bad_user_input_before_any_call(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline, query: str, message: str
) -> None:
    result = await run(schema, timeline, query)

    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert result.errors is not None
    assert message in result.errors[0].message
    assert fake.requests == {}


async def test_search_finds_by_name_prefix_and_primes_the_customer_loader(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    query = """{
        searchCustomers(query: " yamada ", first: 5) { id displayName }
        again: customer(id: "c-1") { id }
    }"""
    result = await run(schema, timeline, query)

    assert data(result) == {
        "searchCustomers": [{"id": "c-1", "displayName": "Yamada Hanako"}],
        "again": {"id": "c-1"},
    }
    [request] = fake.calls("SearchCustomers")
    assert (request.tenant, request.query, request.limit) == (TENANT, "yamada", 5)


CUSTOMER_VIEW = """
{
  customer(id: "c-1") {
    openCaseId
    openCase { id status }
    lastAgentRemark { eventId kind agent { id displayName } text openQuestions occurredAt caseId }
    cases(first: 2) { edges { node { id customerId } } pageInfo { hasNextPage } }
    mergeHistory {
      id survivorId mergedIds rule status reason evidenceEventId at splitAt splitReason
      actor { type id }
      splitBy { type id displayName }
      evidence { customerId identifier { kind value } }
    }
    mergeSuggestions { id customerIds signals status createdAt customers { id displayName } }
    timeline(first: 3, caseId: "case-1") {
      edges { node { eventId caseId switchedFrom case { id status } } }
    }
  }
}
"""


async def test_customer_view_has_case_remark_ledger_suggestions_and_case_timeline(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    # The page of cases and the timeline are read concurrently; the timeline answering last,
    # as it does when it is the slower call, is when the cases page primes the entries' case.
    fake.answer_after["ListInteractions"] = "ListCases"
    result = await run(schema, timeline, CUSTOMER_VIEW)

    customer = data(result)["customer"]
    assert customer["openCaseId"] == "open-1"
    assert customer["openCase"] == {"id": "open-1", "status": "OPEN"}
    assert customer["lastAgentRemark"] == {
        "eventId": "ev-note",
        "kind": "HANDOFF",
        "agent": {"id": "agent-7", "displayName": "Sato"},
        "text": "Wants to cancel; offer a discount",
        "openQuestions": ["Which plan?"],
        "occurredAt": "2025-03-02T10:30:00+00:00",
        "caseId": "case-1",
    }
    assert customer["cases"] == {
        "edges": [
            {"node": {"id": "case-1", "customerId": "c-1"}},
            {"node": {"id": "case-13", "customerId": "c-1"}},
        ],
        "pageInfo": {"hasNextPage": True},
    }
    assert customer["mergeHistory"] == [
        {
            "id": "merge-1",
            "survivorId": "c-1",
            "mergedIds": ["c-0"],
            "rule": "shared_deterministic_identifier",
            "status": "split",
            "reason": None,
            "evidenceEventId": "ev-call",
            "at": "2025-03-02T10:00:00+00:00",
            "splitAt": "2025-03-03T10:00:00+00:00",
            "splitReason": "Two sisters sharing a phone",
            "actor": {"type": "SYSTEM", "id": "timeline"},
            "splitBy": {"type": "AGENT", "id": "agent-7", "displayName": "Sato"},
            "evidence": [
                {"customerId": "c-0", "identifier": {"kind": "PHONE", "value": "+819012345678"}}
            ],
        }
    ]
    assert customer["mergeSuggestions"] == [
        {
            "id": "sug-1",
            "customerIds": ["c-1", "c-2"],
            "signals": ["same_name"],
            "status": "open",
            "createdAt": "2025-03-02T11:00:00+00:00",
            "customers": [
                {"id": "c-1", "displayName": "Yamada Hanako"},
                {"id": "c-2", "displayName": "Customer 2"},
            ],
        }
    ]
    nodes = [edge["node"] for edge in customer["timeline"]["edges"]]
    assert [(n["caseId"], n["switchedFrom"]) for n in nodes] == [
        ("case-1", None),
        ("case-1", "CHAT"),
        ("case-1", None),
    ]
    assert {n["case"]["id"] for n in nodes} == {"case-1"}
    [listed] = fake.calls("ListInteractions")
    assert listed.case_id == "case-1"
    # The entries' case came primed from the `cases` page: only the open case was fetched.
    [cases_call] = fake.calls("GetCases")
    assert list(cases_call.case_ids) == ["open-1"]
    assert [list(call.customer_ids) for call in fake.calls("GetCustomers")] == [["c-1"], ["c-2"]]


async def test_merge_suggestions_of_the_tenant(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    result = await run(schema, timeline, "{ mergeSuggestions(first: 10) { id customerIds } }")

    assert data(result) == {"mergeSuggestions": [{"id": "sug-1", "customerIds": ["c-1", "c-2"]}]}
    [request] = fake.calls("ListMergeSuggestions")
    assert (request.tenant, request.customer_id, request.limit) == (TENANT, "", 10)


async def test_merge_history_of_many_customers_is_one_call_each_in_one_batch(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    aliases = " ".join(
        f'c{n}: customer(id: "c-{n}") {{ mergeHistory {{ id }} }}' for n in range(1, 6)
    )
    result = await run(schema, timeline, f"{{ {aliases} }}")

    assert data(result)["c1"] == {"mergeHistory": [{"id": "merge-1"}]}
    assert data(result)["c2"] == {"mergeHistory": []}
    assert len(fake.calls("GetCustomers")) == 1
    assert sorted(r.customer_id for r in fake.calls("GetMergeHistory")) == [
        f"c-{n}" for n in range(1, 6)
    ]


async def test_an_older_timeline_without_the_rpc_is_not_supported_for_that_field_only(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    fake.unimplemented.update({"GetCases", "GetMergeHistory"})
    query = '{ customer(id: "c-1") { id openCase { id } mergeHistory { id } } }'

    result: Any = await run(schema, timeline, query)

    assert result.data == {"customer": None}
    assert set(error_codes(result)) == {"NOT_SUPPORTED"}
    assert "does not support" in result.errors[0].message


async def test_entries_of_one_case_read_its_timeline_once(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    query = """{ customer(id: "c-1") { timeline(first: 20) { edges { node { eventId
        case { id timeline(first: 5) { edges { node { eventId } } } } } } } } }"""

    result = await run(schema, timeline, query)

    edges = data(result)["customer"]["timeline"]["edges"]
    cases = {edge["node"]["case"]["id"] for edge in edges}
    assert len(edges) > len(cases) == 1  # several entries, one case
    assert all(edge["node"]["case"]["timeline"]["edges"] for edge in edges)
    # The customer's page, then one page for the case: not one call per entry.
    assert [request.case_id for request in fake.calls("ListInteractions")] == ["", "case-1"]
