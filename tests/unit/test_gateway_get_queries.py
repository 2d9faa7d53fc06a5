"""GraphQL over GET (queries in URLs, hence in proxy logs) is refused where GraphiQL is off."""

from __future__ import annotations

import httpx

from tests.unit.test_gateway_http import AUTH, QUERY, serving_gateway
from tests.unit.test_gateway_schema import PHONE_AS_TYPED
from tsunagu.local.processes import NatsServer

_BY_PHONE = f'{{ customerByIdentifier(kind: PHONE, value: "{PHONE_AS_TYPED}") {{ id }} }}'


async def test_production_config_answers_a_get_query_405_without_running_it(
    nats_server: NatsServer,
) -> None:
    async with (
        serving_gateway(nats_server, graphiql=False) as (fake, url),
        httpx.AsyncClient(timeout=10) as client,
    ):
        fake.requests.clear()
        refused = await client.get(url, params={"query": _BY_PHONE}, headers=AUTH)
        reached_timeline = dict(fake.requests)
        posted = await client.post(url, json=QUERY, headers=AUTH)

    assert refused.status_code == 405
    assert "POST" in refused.headers["allow"]
    assert reached_timeline == {}  # refused before anything was run
    assert posted.status_code == 200  # POST keeps working


async def test_get_queries_can_be_turned_off_while_graphiql_stays(
    nats_server: NatsServer,
) -> None:
    async with (
        serving_gateway(nats_server, graphiql=True, graphql_over_get=False) as (fake, url),
        httpx.AsyncClient(timeout=10) as client,
    ):
        fake.requests.clear()
        page = await client.get(url, headers={"accept": "text/html"})
        refused = await client.get(url, params={"query": _BY_PHONE}, headers=AUTH)

    assert page.status_code == 200
    assert refused.status_code == 400
    assert refused.text == "queries are not allowed when using GET"
    assert fake.requests == {}
