"""The read audit and reveal in the gateway: every read recorded first, failing closed."""

from __future__ import annotations

import csv
import io
import json

import pytest

from gateway.auth import Principal
from gateway.privacy_export import interactions_csv
from gateway.schema import GatewaySchema
from gateway.timeline_client import TimelineClient
from tests.unit.test_gateway_schema import (
    AGENT,
    TENANT,
    FakeTimeline,
    data,
    error_codes,
    fake,
    fake_server,
    run,
    schema,
    timeline,
)
from tsunagu.v1 import timeline_pb2

__all__ = ["fake", "fake_server", "schema", "timeline"]  # fixtures shared with the schema tests

OFFICER = Principal(subject="dpo-1", tenant=TENANT, roles=frozenset({"privacy_officer"}))
SUPERVISOR = Principal(subject="lead-2", tenant=TENANT, roles=frozenset({"supervisor"}))
ANALYST = Principal(subject="ana", tenant=TENANT, roles=frozenset({"analyst"}))

REVEAL = """mutation ($id: ID!, $reason: String!) {
  reveal(customerId: $id, field: PHONE_NUMBERS, reason: $reason) { customerId field values }
}"""


def _recorded(fake: FakeTimeline) -> list[tuple[str, str, str]]:
    return [(access.customer_id, access.operation, access.subject) for _, access in fake.accesses]


async def test_a_profile_and_timeline_read_are_recorded_once_each(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    query = '{ customer(id: "c-1") { displayName timeline(first: 5) { edges { node { text } } } } }'

    data(await run(schema, timeline, query))

    assert _recorded(fake) == [
        ("c-1", "read_profile", "agent-7"),
        ("c-1", "read_timeline", "agent-7"),
    ]
    tenant, access = fake.accesses[0]
    assert (tenant, sorted(access.roles)) == (TENANT, ["agent"])


async def test_the_customers_of_many_cases_are_recorded_in_one_batch(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    query = """{ cases(filter: {ownerAgentId: "agent-7"}, first: 12) {
        edges { node { customer { id } } } } }"""

    found = data(await run(schema, timeline, query))

    customers = {edge["node"]["customer"]["id"] for edge in found["cases"]["edges"]}
    assert {customer for customer, _, _ in _recorded(fake)} == customers
    assert len(customers) > 1
    assert fake.record_calls == 1  # siblings resolve together: one RecordAccess


async def test_a_read_whose_audit_cannot_be_recorded_serves_nothing(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    fake.audit_down = True
    query = '{ customer(id: "c-1") { displayName identifiers { value } } }'

    result = await run(schema, timeline, query)

    assert result.data == {"customer": None}
    assert error_codes(result) == ["AUDIT_UNAVAILABLE"]
    assert "Yamada" not in str(result)


async def test_reveal_shows_the_full_value_after_recording_who_why_and_what(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    variables = {"id": "c-1", "reason": "Customer asked for a call back"}

    revealed = data(await run(schema, timeline, REVEAL, variables))["reveal"]

    assert revealed == {"customerId": "c-1", "field": "PHONE_NUMBERS", "values": ["+819012345678"]}
    [(_, access)] = fake.accesses
    assert (access.operation, list(access.fields), access.reason) == (
        "reveal",
        ["PHONE_NUMBERS"],
        "Customer asked for a call back",
    )


async def test_reveal_fails_closed_when_the_audit_is_down(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    fake.audit_down = True
    variables = {"id": "c-1", "reason": "Customer asked for a call back"}

    result = await run(schema, timeline, REVEAL, variables)

    assert error_codes(result) == ["AUDIT_UNAVAILABLE"]
    assert "9012345678" not in str(result.data)


@pytest.mark.parametrize("principal", [ANALYST, Principal("adm", TENANT, frozenset({"admin"}))])
async def test_roles_without_personal_data_cannot_reveal(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline, principal: Principal
) -> None:
    result = await run(schema, timeline, REVEAL, {"id": "c-1", "reason": "curious"}, principal)

    assert error_codes(result) == ["FORBIDDEN"]
    assert fake.accesses == []
    assert fake.calls("GetCustomers") == []


async def test_a_privacy_officer_reads_a_customers_audit_trail_and_the_reading_is_audited(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    data(await run(schema, timeline, '{ customer(id: "c-1") { displayName } }'))
    query = """{ auditTrail(customerId: "c-1", first: 10) {
        edges { node { sequence subject operation customerId roles } }
        pageInfo { hasNextPage } } }"""

    trail = data(await run(schema, timeline, query, principal=OFFICER))["auditTrail"]

    assert [edge["node"]["operation"] for edge in trail["edges"]] == ["read_audit", "read_profile"]
    assert trail["edges"][1]["node"]["subject"] == "agent-7"
    assert trail["edges"][0]["node"]["roles"] == ["privacy_officer"]


@pytest.mark.parametrize("principal", [AGENT, SUPERVISOR, ANALYST])
@pytest.mark.parametrize(
    "query",
    [
        '{ auditTrail(customerId: "c-1") { pageInfo { hasNextPage } } }',
        "{ auditLog { pageInfo { hasNextPage } } }",
        "{ verifyAuditChain { intact } }",
    ],
)
async def test_only_privacy_officers_read_the_audit(
    schema: GatewaySchema,
    timeline: TimelineClient,
    fake: FakeTimeline,
    principal: Principal,
    query: str,
) -> None:
    result = await run(schema, timeline, query, principal=principal)

    assert error_codes(result) == ["FORBIDDEN"]
    assert fake.calls("ListAudit") == fake.calls("VerifyAuditChain") == []


@pytest.mark.parametrize(
    "arguments",
    [
        "auditLog(first: 0)",
        "auditLog(first: 201)",
        'auditLog(after: "../1")',
        'auditLog(after: "99999999999999999999")',
        'auditLog(after: "１")',
        f'auditTrail(customerId: "{"c" * 257}")',
        'auditTrail(customerId: "  ")',
    ],
)
async def test_audit_reads_refuse_bad_pages_cursors_and_ids_recording_nothing(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline, arguments: str
) -> None:
    result = await run(
        schema, timeline, f"{{ {arguments} {{ pageInfo {{ hasNextPage }} }} }}", principal=OFFICER
    )

    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert fake.calls("ListAudit") == []
    assert fake.accesses == []


async def test_verify_audit_chain_answers_for_the_officers_tenant(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    verdict = data(
        await run(
            schema,
            timeline,
            "{ verifyAuditChain { intact firstBrokenSequence } }",
            principal=OFFICER,
        )
    )

    assert verdict == {"verifyAuditChain": {"intact": True, "firstBrokenSequence": None}}
    [request] = fake.calls("VerifyAuditChain")
    assert request.tenant == TENANT


EXPORT = """query ($id: ID!, $reason: String!) {
  exportCustomer(customerId: $id, reason: $reason) {
    customerId interactionCount document interactionsCsv
  }
}"""


async def test_a_privacy_officer_exports_everything_and_the_export_is_audited(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    variables = {"id": "c-1", "reason": "SAR-2025-001"}

    exported = data(await run(schema, timeline, EXPORT, variables, OFFICER))["exportCustomer"]

    document = json.loads(exported["document"])
    assert document["format"] == "tsunagu.customer-export/1"
    assert document["customer_id"] == "c-1"
    assert document["profile"]["display_name"] == "Yamada Hanako"
    # Unmasked: the export is the data subject's own data.
    assert {"kind": "IDENTIFIER_KIND_PHONE", "value": "+819012345678", "verified": True} in (
        document["identifiers"]
    )
    assert len(document["interactions"]) == exported["interactionCount"] > 0
    assert document["merge_history"][0]["id"] == "merge-1"
    rows = list(csv.DictReader(io.StringIO(exported["interactionsCsv"])))
    assert [row["event_id"] for row in rows] == [
        entry["interaction"]["event_id"] for entry in document["interactions"]
    ]
    [(_, access)] = fake.accesses
    assert (access.operation, access.customer_id, access.reason) == (
        "export",
        "c-1",
        "SAR-2025-001",
    )


@pytest.mark.parametrize("principal", [AGENT, SUPERVISOR, ANALYST])
async def test_an_export_by_any_other_role_is_refused_before_anything_is_read(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline, principal: Principal
) -> None:
    result = await run(schema, timeline, EXPORT, {"id": "c-1", "reason": "curious"}, principal)

    assert error_codes(result) == ["FORBIDDEN"]
    assert result.data is None
    assert fake.calls("GetCustomers") == fake.calls("ListInteractions") == []
    assert fake.accesses == []


async def test_an_export_whose_audit_cannot_be_recorded_is_not_answered(
    schema: GatewaySchema, timeline: TimelineClient, fake: FakeTimeline
) -> None:
    fake.audit_down = True

    result = await run(schema, timeline, EXPORT, {"id": "c-1", "reason": "SAR-1"}, OFFICER)

    assert error_codes(result) == ["AUDIT_UNAVAILABLE"]
    assert result.data is None


_BAD_INPUT = [
    ({"id": "c-1", "reason": ""}, "BAD_USER_INPUT"),
    ({"id": "c-1", "reason": "  x "}, "BAD_USER_INPUT"),
    ({"id": "c-1", "reason": "x" * 501}, "BAD_USER_INPUT"),
    ({"id": "c-1", "reason": "because\u202e evil"}, "BAD_USER_INPUT"),
    ({"id": "c-1", "reason": "line\nbreak"}, "BAD_USER_INPUT"),
    ({"id": "x" * 257, "reason": "a good reason"}, "BAD_USER_INPUT"),
    ({"id": "  ", "reason": "a good reason"}, "BAD_USER_INPUT"),
    ({"id": "nobody", "reason": "a good reason"}, "NOT_FOUND"),
]
_GLOBEX_AGENT = Principal(subject="agent-9", tenant="globex", roles=frozenset({"agent"}))
_GLOBEX_OFFICER = Principal(subject="dpo-9", tenant="globex", roles=frozenset({"privacy_officer"}))


@pytest.mark.parametrize(
    ("operation", "principal", "variables", "code"),
    [
        *((REVEAL, AGENT, variables, code) for variables, code in _BAD_INPUT),
        *((EXPORT, OFFICER, variables, code) for variables, code in _BAD_INPUT),
        # Another tenant's customer is nobody in the caller's tenant.
        (REVEAL, _GLOBEX_AGENT, {"id": "c-1", "reason": "curious"}, "NOT_FOUND"),
        (EXPORT, _GLOBEX_OFFICER, {"id": "c-1", "reason": "SAR-1"}, "NOT_FOUND"),
    ],
)
async def test_reveals_and_exports_refuse_bad_input_and_others_customers_recording_nothing(
    schema: GatewaySchema,
    timeline: TimelineClient,
    fake: FakeTimeline,
    *,
    operation: str,
    principal: Principal,
    variables: dict[str, str],
    code: str,
) -> None:
    result = await run(schema, timeline, operation, variables, principal)

    assert error_codes(result) == [code]
    assert fake.accesses == []


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_quoted() -> None:
    entry = timeline_pb2.TimelineEntry()
    entry.interaction.event_id = "e-1"
    entry.interaction.content.text = '=HYPERLINK("http://evil.example","click")'

    [row] = list(csv.DictReader(io.StringIO(interactions_csv([entry]))))

    assert row["text"] == '\'=HYPERLINK("http://evil.example","click")'
