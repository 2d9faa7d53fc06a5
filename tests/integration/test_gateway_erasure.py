"""`eraseCustomer` and `erasureStatus` through the gateway's schema against the real timeline."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from strawberry.types import ExecutionResult

from gateway.auth import Principal
from gateway.context import GatewayContext
from gateway.schema import GatewaySchema, build_schema
from gateway.timeline_client import TimelineClient
from tests import builders
from tests.grpc_credentials import CallerSet
from tests.integration.sealed_services import sealed_services
from tests.integration.test_ingest_to_timeline import submit, wait_for_events
from tests.unit.test_gateway_schema import settings

Starter = Callable[..., AbstractAsyncContextManager[Any]]

ERASE = """
mutation Erase($id: ID!, $reason: String!) {
  eraseCustomer(customerId: $id, reason: $reason) {
    id customerIds bySubject reason keyIds suppressedIdentifiers
    counts { contacts contactsByChannel { name count } csatScores }
  }
}
"""
STATUS = "query S($id: ID!) { erasureStatus(customerId: $id) { previouslyErased } }"
CERTIFICATES = "query S($id: ID!) { erasureStatus(customerId: $id) { certificates { id } } }"


@pytest.fixture
async def served(
    run_timeline: Starter, run_ingest: Starter, callers: CallerSet, tmp_path: Path
) -> AsyncIterator[dict[str, Any]]:
    async with (
        sealed_services(
            run_timeline=run_timeline,
            run_ingest=run_ingest,
            callers=callers,
            key_file=tmp_path / "keys.json",
            channels=("voice",),
        ) as services,
        TimelineClient(
            address=services.timeline_address, timeout_seconds=20, token=callers.service
        ) as client,
    ):
        yield {
            "client": client,
            "timeline": services.timeline,
            "voice": services.ingest["voice"],
            "schema": build_schema(settings()),
        }


async def _run(
    served: dict[str, Any], query: str, variables: dict[str, Any], principal: Principal
) -> ExecutionResult:
    schema: GatewaySchema = served["schema"]
    context = GatewayContext(timeline=served["client"], principal=principal)
    return await schema.execute(query, variable_values=variables, context_value=context)


def _as(role: str, tenant: str) -> Principal:
    return Principal(subject=f"{role}-1", tenant=tenant, roles=frozenset({role}))


def _codes(result: ExecutionResult) -> list[object]:
    return [(e.extensions or {}).get("code") for e in result.errors or ()]


async def _customer(served: dict[str, Any], tenant: str, phone: str) -> tuple[str, str]:
    call = builders.call(tenant, from_number=phone, call_id=f"call-{uuid.uuid4().hex[:6]}")
    await submit(served["voice"], call)
    owners = await wait_for_events(served["timeline"], tenant, [call.event_id])
    return owners[call.event_id], call.event_id


async def test_a_privacy_officer_erases_and_an_agent_sees_only_the_flag(
    served: dict[str, Any], tenant: str
) -> None:
    phone = f"+8180{uuid.uuid4().int % 10**8:08d}"
    customer_id, _ = await _customer(served, tenant, phone)
    for role in ("agent", "supervisor", "analyst", "admin"):
        refused = await _run(served, ERASE, {"id": customer_id, "reason": "r"}, _as(role, tenant))
        assert _codes(refused) == ["FORBIDDEN"], role

    erased = await _run(
        served,
        ERASE,
        {"id": customer_id, "reason": "GDPR art. 17 request"},
        _as("privacy_officer", tenant),
    )

    assert erased.errors is None, erased.errors
    assert erased.data is not None
    certificate = erased.data["eraseCustomer"]
    assert certificate["customerIds"] == [customer_id]
    assert certificate["bySubject"] == "privacy_officer-1"
    assert certificate["counts"]["contactsByChannel"] == [{"name": "voice", "count": 1}]
    newcomer, _ = await _customer(served, tenant, phone)
    assert newcomer != customer_id
    flagged = await _run(served, STATUS, {"id": newcomer}, _as("agent", tenant))
    assert flagged.data == {"erasureStatus": {"previouslyErased": True}}
    hidden = await _run(served, CERTIFICATES, {"id": customer_id}, _as("agent", tenant))
    assert _codes(hidden) == ["FORBIDDEN"]
    again = await _run(
        served, ERASE, {"id": customer_id, "reason": "again"}, _as("privacy_officer", tenant)
    )
    assert _codes(again) == ["NOT_FOUND"]


@pytest.mark.parametrize(
    ("customer_id", "reason", "code"),
    [
        ("", "request", "BAD_USER_INPUT"),
        ("   ", "request", "BAD_USER_INPUT"),
        ("c" * 300, "request", "BAD_USER_INPUT"),
        ("cus_\x00x", "request", "BAD_USER_INPUT"),
        ("cus_x", "", "BAD_USER_INPUT"),
        ("cus_x", "  \n ", "BAD_USER_INPUT"),
        ("cus_x", "r" * 1001, "BAD_USER_INPUT"),
        ("cus_nobody", "request", "NOT_FOUND"),
    ],
)
async def test_malformed_oversized_or_unknown_erasures_are_refused(
    served: dict[str, Any], tenant: str, customer_id: str, reason: str, code: str
) -> None:
    result = await _run(
        served,
        ERASE,
        {"id": customer_id, "reason": reason},
        _as("privacy_officer", tenant),
    )
    assert _codes(result) == [code]
