"""GraphQL sessions against a running local stack's gateway, for e2e tests and benchmarks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gql import Client
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.websockets import WebsocketsTransport


@asynccontextmanager
async def http_session(
    graphql_url: str, *, authorization: str, timeout_seconds: float = 10
) -> AsyncIterator[Any]:
    """A third-party GraphQL client (gql) over HTTP, sending ``authorization`` ("Bearer …")."""
    transport = AIOHTTPTransport(url=graphql_url, headers={"Authorization": authorization})
    async with Client(
        transport=transport, fetch_schema_from_transport=False, execute_timeout=timeout_seconds
    ) as session:
        yield session


@asynccontextmanager
async def ws_session(graphql_url: str, *, authorization: str) -> AsyncIterator[Any]:
    """A gql session over WebSocket speaking graphql-transport-ws (never legacy graphql-ws).

    Browsers cannot set WebSocket headers: the token goes in the ``connection_init`` payload.
    """
    transport = WebsocketsTransport(
        url=graphql_url.replace("http://", "ws://"),
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"Authorization": authorization},
    )
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        yield session
