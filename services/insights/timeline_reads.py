"""Reading an entry back from the timeline's gRPC API, for notices sent without their entry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from tsunagu.grpc_channels import open_channel
from tsunagu.lifecycle import Lifecycle
from tsunagu.rpc import MAX_RESPONSE_BYTES
from tsunagu.v1 import timeline_pb2, timeline_pb2_grpc

if TYPE_CHECKING:
    from tsunagu.v1.timeline_pb2_grpc import TimelineServiceAsyncStub


class TimelineReads(Lifecycle):
    """A channel to the timeline with the insights service's caller token."""

    def __init__(self, address: str, *, token: str, timeout_seconds: float) -> None:
        self._address = address
        self._token = token
        self._timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None
        self._stub: TimelineServiceAsyncStub | None = None

    async def open(self) -> None:
        self._channel = open_channel(
            self._address,
            token=self._token or None,
            options=[("grpc.max_receive_message_length", MAX_RESPONSE_BYTES)],
        )
        self._stub = timeline_pb2_grpc.TimelineServiceStub(self._channel)

    async def close(self, grace: float | None = None) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close(grace)

    async def entry(self, tenant: str, event_id: str) -> timeline_pb2.TimelineEntry | None:
        """The stored entry of `event_id`, or None when the timeline has none.

        Raises:
            grpc.aio.AioRpcError: The timeline could not answer (the feed retries the notice).
        """
        if self._stub is None:
            raise RuntimeError("the timeline reads are not open")
        request = timeline_pb2.GetInteractionsRequest(tenant=tenant, event_ids=[event_id])
        response: timeline_pb2.GetInteractionsResponse = await self._stub.GetInteractions(
            request, timeout=self._timeout
        )
        return response.entries[0] if response.entries else None
