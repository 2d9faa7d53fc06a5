"""Roles on every GraphQL field: the matrix covers the schema, and each role gets what it says."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from gateway.mutations import Mutation
from gateway.permissions import ROLES, Operation, UndecidedField, decision
from gateway.queries import Query
from gateway.roles import Role
from gateway.schema import GatewaySchema, build_schema
from gateway.subscriptions import Subscription
from tests.unit.test_gateway_http import IDP, serving_gateway
from tests.unit.test_gateway_schema import TENANT, FakeTimeline, settings
from tsunagu.local.processes import NatsServer

REPO_ROOT = Path(__file__).resolve().parents[2]
SUBJECT = "u-1"
NO_ROLES = "(none)"
EVERY_ROLE = (*(role.value for role in Role), NO_ROLES)


def _token(role: str) -> str:
    """A real signed token of the test IdP for a principal with `role` (or none)."""
    return IDP.bearer(tenant=TENANT, subject=SUBJECT, roles=() if role == NO_ROLES else (role,))


@pytest.fixture(scope="module")
async def served(nats_server: NatsServer) -> AsyncIterator[tuple[FakeTimeline, str]]:
    """The real ASGI app over uvicorn, in front of a fake timeline over real gRPC."""
    async with serving_gateway(nats_server) as served:
        yield served


# --- the matrix covers the schema -------------------------------------------------------

INTROSPECTION = "{ __schema { types { name kind fields { name } } } }"


def test_every_field_of_the_schema_has_a_role_decision() -> None:
    schema = build_schema(settings())
    result = schema.execute_sync(INTROSPECTION)
    assert result.errors is None
    assert result.data is not None

    objects = [
        type_
        for type_ in result.data["__schema"]["types"]
        if type_["kind"] == "OBJECT" and not type_["name"].startswith("__")
    ]
    undecided = [
        f"{type_['name']}.{field['name']}"
        for type_ in objects
        for field in type_["fields"]
        if decision(type_["name"], field["name"]) is None
    ]

    assert {type_["name"] for type_ in objects} >= {"Query", "Mutation", "Subscription"}
    assert undecided == []


def test_a_new_root_field_without_a_decision_stops_the_schema_from_building() -> None:
    @strawberry.type(name="Query")
    class QueryWithANewField(Query):
        @strawberry.field
        def every_customer(self) -> list[str]:
            return ["Yamada Hanako"]

    with pytest.raises(UndecidedField, match=r"Query\.everyCustomer"):
        GatewaySchema(query=QueryWithANewField, mutation=Mutation, subscription=Subscription)


def test_the_documented_matrix_is_the_enforced_one() -> None:
    """docs/security.md lists, per operation, a ✓ under each role ROLES allows."""
    text = (REPO_ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    section = text.split("## Role × operation matrix", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    header = next(line for line in section.splitlines() if line.startswith("| operation"))
    roles = [cell.strip().strip("`") for cell in header.strip("|").split("|")[1:-1]]

    documented = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        operation = Operation[re.sub(r"`", "", cells[0])]
        documented[operation] = frozenset(
            Role(role) for role, cell in zip(roles, cells[1:-1], strict=True) if cell == "✓"
        )

    assert documented == dict(ROLES)


# --- each role gets exactly what the matrix says, over HTTP -----------------------------

PERSONAL = {"agent", "supervisor", "privacy_officer"}
ALL = {role.value for role in Role}

# name: (operation, path of the guarded field, roles allowed, error code when allowed)
CASES: dict[str, tuple[str, list[str], set[str], str | None]] = {
    "customer profile": ('{ customer(id: "c-1") { displayName } }', ["customer"], PERSONAL, None),
    "identifiers through a case": (
        '{ case(id: "case-1") { status customer { identifiers { value } } } }',
        ["case", "customer"],
        PERSONAL,
        None,
    ),
    "timeline text": (
        '{ customer(id: "c-1") { timeline(first: 5) { edges { node { text } } } } }',
        ["customer"],
        PERSONAL,
        None,
    ),
    "case metrics": ('{ case(id: "case-1") { status escalationLevel } }', ["case"], ALL, None),
    "case content": (
        '{ case(id: "case-1") { status escalationReason } }',
        ["case", "escalationReason"],
        PERSONAL,
        None,
    ),
    "search": (
        '{ searchCustomers(query: "yamada") { id } }',
        ["searchCustomers"],
        {"supervisor", "privacy_officer"},
        None,
    ),
    "all cases": (
        "{ cases { pageInfo { hasNextPage } } }",
        ["cases"],
        {"supervisor", "analyst", "admin"},
        None,
    ),
    "own cases": (
        f'{{ cases(filter: {{ownerAgentId: "{SUBJECT}"}}) {{ pageInfo {{ hasNextPage }} }} }}',
        ["cases"],
        ALL,
        None,
    ),
    "merge suggestions": (
        "{ mergeSuggestions { id } }",
        ["mergeSuggestions"],
        {"supervisor", "privacy_officer"},
        None,
    ),
    "merge evidence": (
        '{ customer(id: "c-1") { mergeHistory { evidence { identifier { value } } } } }',
        ["customer"],
        {"supervisor", "privacy_officer"},
        None,
    ),
    # An invalid action: past the role check it is BAD_USER_INPUT, and nothing is published.
    "agent action": (
        'mutation { addNote(customerId: "c-1", text: "") { eventId } }',
        ["addNote"],
        {"agent", "supervisor"},
        "BAD_USER_INPUT",
    ),
    "merge": (
        'mutation { mergeCustomers(customerIds: ["c-1", "c-1"], reason: "r") { eventId } }',
        ["mergeCustomers"],
        {"supervisor"},
        "BAD_USER_INPUT",
    ),
    "record consent": (
        'mutation { recordConsent(customerId: "c-1", channel: SMS, purpose: MARKETING, '
        'granted: true, evidence: "\\u0007") { eventId } }',
        ["recordConsent"],
        {"agent", "supervisor", "privacy_officer"},
        "BAD_USER_INPUT",
    ),
    "outreach": (
        'mutation { recordOutreach(customerId: "c-1", channel: SMS, purpose: MARKETING, '
        'text: "") { eventId } }',
        ["recordOutreach"],
        {"agent", "supervisor"},
        "BAD_USER_INPUT",
    ),
}


def _at(data: Any, path: list[str]) -> Any:
    for key in path:
        if data is None:
            return None
        data = data[key]
    return data


@pytest.mark.parametrize("role", EVERY_ROLE)
@pytest.mark.parametrize("name", CASES)
async def test_each_role_gets_exactly_what_the_matrix_says(
    served: tuple[FakeTimeline, str], name: str, role: str
) -> None:
    query, path, allowed, code_when_allowed = CASES[name]
    _, url = served

    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            url, json={"query": query}, headers={"authorization": _token(role)}
        )

    body = response.json()
    codes = [error["extensions"]["code"] for error in body.get("errors", ())]
    if role in allowed:
        assert codes == ([code_when_allowed] if code_when_allowed else []), body
        if code_when_allowed is None:
            assert _at(body["data"], path) is not None
    else:
        assert codes == ["FORBIDDEN"], body
        assert _at(body.get("data"), path) is None


async def test_an_analyst_reads_case_metrics_but_not_who_the_customer_is(
    served: tuple[FakeTimeline, str],
) -> None:
    _, url = served
    query = '{ case(id: "case-1") { status escalationLevel customer { displayName } } }'

    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            url, json={"query": query}, headers={"authorization": _token("analyst")}
        )

    body = response.json()
    assert body["data"]["case"]["status"] is not None
    assert body["data"]["case"]["customer"] is None
    [error] = body["errors"]
    assert (error["path"], error["extensions"]) == (["case", "customer"], {"code": "FORBIDDEN"})
    assert "Yamada" not in response.text


async def test_a_principal_without_roles_gets_no_data_from_any_root_field(
    served: tuple[FakeTimeline, str],
) -> None:
    fake, url = served
    fake.requests.clear()
    query = """{
      customer(id: "c-1") { id } customerByIdentifier(kind: EMAIL, value: "a@example.com") { id }
      searchCustomers(query: "yamada") { id } case(id: "case-1") { id }
      cases { pageInfo { hasNextPage } } mergeSuggestions { id }
    }"""

    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            url, json={"query": query}, headers={"authorization": _token(NO_ROLES)}
        )

    body = response.json()
    assert body["data"] is None or all(value is None for value in body["data"].values())
    assert {error["extensions"]["code"] for error in body["errors"]} == {"FORBIDDEN"}
    assert fake.requests == {}  # refused before any read


async def _subscribe(url: str, role: str, query: str) -> dict[str, Any]:
    """The first answer to a subscription over graphql-transport-ws."""
    ws_url = url.replace("http://", "ws://")
    async with connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        init = {"type": "connection_init", "payload": {"authorization": _token(role)}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        async with asyncio.timeout(10):
            answer: dict[str, Any] = json.loads(await ws.recv())
    return answer


@pytest.mark.parametrize("role", EVERY_ROLE)
async def test_only_agents_and_supervisors_watch_timelines_live(
    served: tuple[FakeTimeline, str], role: str
) -> None:
    _, url = served
    # An unknown customer: past the role check the subscription ends with NOT_FOUND.
    query = 'subscription { timelineUpdated(customerId: "c-nobody") { eventId } }'

    answer = await _subscribe(url, role, query)

    errors = answer["payload"] if answer["type"] == "error" else answer["payload"]["errors"]
    expected = "NOT_FOUND" if role in {"agent", "supervisor"} else "FORBIDDEN"
    assert [error["extensions"]["code"] for error in errors] == [expected], answer


@pytest.mark.parametrize(
    ("role", "codes"),
    [
        (NO_ROLES, ["FORBIDDEN", "FORBIDDEN"]),
        ("agent", ["FORBIDDEN"]),  # the profile is an agent's; searching everyone is not
        ("supervisor", ["BAD_USER_INPUT"]),  # "+8" is a country, not a person
    ],
)
async def test_finding_5_reads_get_no_data_without_the_role_and_no_prefix_dump(
    served: tuple[FakeTimeline, str], role: str, codes: list[str]
) -> None:
    fake, url = served
    fake.requests.clear()
    query = """{ customer(id: "c-1") { identifiers { value } timeline { edges { node { text } } } }
                 searchCustomers(query: "+8", first: 50) { id displayName } }"""

    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            url, json={"query": query}, headers={"authorization": _token(role)}
        )

    body = response.json()
    assert sorted(error["extensions"]["code"] for error in body["errors"]) == sorted(codes)
    assert body["data"] is None  # a non-null searchCustomers refused nulls the whole answer
    assert fake.calls("SearchCustomers") == []
