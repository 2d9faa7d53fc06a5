"""The local stack's printed credentials: one token per role that its gateway accepts."""

from __future__ import annotations

import json

import httpx

from tsunagu.local.issuer import ROLES
from tsunagu.local.stack import LocalStack

WHO_AM_I = {"query": '{ customer(id: "nobody") { id } }'}


async def test_local_credentials_file_holds_a_working_token_per_role(stack: LocalStack) -> None:
    tokens = json.loads(stack.credentials_file.read_text())["graphql"]

    async with httpx.AsyncClient(timeout=10) as client:
        answers = {
            role: await client.post(
                stack.graphql_url, json=WHO_AM_I, headers={"authorization": token}
            )
            for role, token in tokens.items()
        }
        anonymous = await client.post(stack.graphql_url, json=WHO_AM_I)

    assert sorted(tokens) == sorted(ROLES)
    assert {role: answer.status_code for role, answer in answers.items()} == dict.fromkeys(
        ROLES, 200
    )
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
