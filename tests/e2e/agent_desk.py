"""Helpers of the agent-desk e2e tests: gql clients over HTTP and WebSocket, submitting."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from tsunagu.grpc_channels import open_channel
from tsunagu.local import graphql
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc, interaction_pb2

# The agents' tenant: the gateway takes the tenant from the token, never the query.
TENANT = "demo"
AGENT = ("agent",)
# Who the sessions' tokens name: actions on the timeline carry them.
AGENT_ID = "agent-7"
AGENT_NAME = "Tanaka"


def _bearer(stack: LocalStack, roles: Iterable[str]) -> str:
    token = stack.issuer.mint(tenant=TENANT, roles=roles, subject=AGENT_ID, name=AGENT_NAME)
    return f"Bearer {token}"


@asynccontextmanager
async def http_session(stack: LocalStack, roles: Iterable[str] = AGENT) -> AsyncIterator[Any]:
    """A third-party GraphQL client (gql) over HTTP, as an agent of TENANT with ``roles``."""
    authorization = _bearer(stack, roles)
    async with graphql.http_session(stack.graphql_url, authorization=authorization) as session:
        yield session


@asynccontextmanager
async def ws_session(stack: LocalStack, roles: Iterable[str] = AGENT) -> AsyncIterator[Any]:
    """A gql session over graphql-transport-ws, as an agent of TENANT with ``roles``."""
    authorization = _bearer(stack, roles)
    async with graphql.ws_session(stack.graphql_url, authorization=authorization) as session:
        yield session


async def execute(session: Any, query: str, **variables: Any) -> dict[str, Any]:
    result: dict[str, Any] = await session.execute(GraphQLRequest(query, variable_values=variables))
    return result


async def submit(stack: LocalStack, channel: str, interaction: interaction_pb2.Interaction) -> None:
    token = stack.grpc_callers.adapter(channel)
    async with open_channel(stack.ingest_addresses[channel], token=token) as ch:
        stub = ingest_pb2_grpc.IngestServiceStub(ch)
        response = await stub.Submit(ingest_pb2.SubmitRequest(interaction=interaction))
    assert response.result.status == ingest_pb2.SubmitResult.STATUS_ACCEPTED


# Suffixes already given in this process. The e2e tests share one stack and tenant, and several
# draw from one prefix: a suffix drawn twice (one run in a few hundred) gave two tests one
# customer, so each is given once.
_GIVEN: set[str] = set()


def unique_phone(prefix: str) -> tuple[str, str]:
    """A four-digit suffix for this test's identifiers, and a phone number `prefix`NN-NNNN.

    The suffix is never given twice in a test process, so neither are the number and the
    identifiers built from it.
    """
    while (suffix := f"{uuid.uuid4().int % 10**4:04d}") in _GIVEN:
        pass
    _GIVEN.add(suffix)
    return suffix, f"{prefix}{suffix[:2]}-{suffix}"


async def found(session: Any, query: str, **variables: Any) -> dict[str, Any]:
    """Run a ``customerByIdentifier`` query until the timeline has stored that customer."""
    return await eventually(
        session, query, lambda r: r["customerByIdentifier"] is not None, **variables
    )


# How often `eventually` asks: the e2e tests share one agent, whose queries the gateway limits
# to 10 a second after a burst of 120 (asking every 0.05 s, a topic build slowed by a busy
# machine ran the budget out, and the next test of the module was refused too).
POLL_SECONDS = 0.25


async def eventually(
    session: Any, query: str, check: Any, *, seconds: float = 20, **variables: Any
) -> dict[str, Any]:
    """Run ``query`` until ``check(result)`` is true (the timeline stores asynchronously).

    A query the gateway's rate limit refuses is asked again after the wait it names.
    """
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        pause = POLL_SECONDS
        try:
            result = await execute(session, query, **variables)
        except TransportQueryError as refused:
            error = (refused.errors or [{}])[0]
            if error.get("extensions", {}).get("code") != "RATE_LIMITED":
                raise
            result, pause = error, float(error["extensions"]["retryAfter"])
        else:
            if check(result):
                return result
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"never true: {result}")
        await asyncio.sleep(pause)
