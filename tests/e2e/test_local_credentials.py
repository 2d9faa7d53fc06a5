"""The local stack's printed credentials: one token per role that its gateway accepts."""

from __future__ import annotations

import json

import grpc
import httpx

from tests import builders
from tsunagu.grpc_channels import open_channel
from tsunagu.local.issuer import ROLES
from tsunagu.local.stack import LocalStack
from tsunagu.v1 import ingest_pb2, ingest_pb2_grpc

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


async def _submit(address: str, token: str) -> grpc.StatusCode:
    """The status of submitting a chat event of tenant demo to `address` with `token`."""
    async with open_channel(address, token=token) as ch:
        request = ingest_pb2.SubmitRequest(interaction=builders.chat("demo"))
        try:
            await ingest_pb2_grpc.IngestServiceStub(ch).Submit(request)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_local_credentials_file_holds_a_working_adapter_token_per_channel(
    stack: LocalStack,
) -> None:
    adapters = json.loads(stack.credentials_file.read_text())["adapters"]
    assert sorted(adapters) == sorted(stack.channels)
    refusals = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
    for channel, adapter in adapters.items():
        assert adapter["address"] == stack.ingest_addresses[channel]
        assert adapter["tenants"] == ["demo"]
        # Admitted by its own service (where a chat event is valid, or else INVALID_ARGUMENT),
        # refused by another channel's.
        own = await _submit(adapter["address"], adapter["token"])
        assert own == grpc.StatusCode.OK if channel == "chat" else own not in refusals
        other = next(c for c in stack.channels if c != channel)
        other_code = await _submit(stack.ingest_addresses[other], adapter["token"])
        assert other_code == grpc.StatusCode.PERMISSION_DENIED
    assert await _submit(stack.ingest_addresses["chat"], "") == grpc.StatusCode.UNAUTHENTICATED
