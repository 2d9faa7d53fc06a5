"""Reading entries back from the timeline's gRPC API: notices sent without their entry, and
customers' words, which insights keeps no copy of (docs/insights.md, "What is kept")."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc

from tsunagu.grpc_channels import open_channel
from tsunagu.lifecycle import Lifecycle
from tsunagu.rpc import MAX_RESPONSE_BYTES
from tsunagu.v1 import timeline_pb2, timeline_pb2_grpc

if TYPE_CHECKING:
    from tsunagu.v1.timeline_pb2_grpc import TimelineServiceAsyncStub

log = logging.getLogger(__name__)
# Ids per GetInteractions call: below the timeline's cap (500), and small enough that long
# mails rarely overflow the response budget (a call that does is split in halves).
BULK_IDS = 200


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

    async def entries(
        self, tenant: str, event_ids: Sequence[str]
    ) -> list[timeline_pb2.TimelineEntry]:
        """The stored entries among `event_ids` (unknown ids left out), `BULK_IDS` per call.

        Raises:
            grpc.aio.AioRpcError: The timeline could not answer.
        """
        wanted = list(dict.fromkeys(event_ids))
        found: list[timeline_pb2.TimelineEntry] = []
        for start in range(0, len(wanted), BULK_IDS):
            found.extend(await self._some(tenant, wanted[start : start + BULK_IDS]))
        return found

    async def _some(self, tenant: str, event_ids: list[str]) -> list[timeline_pb2.TimelineEntry]:
        if self._stub is None:
            raise RuntimeError("the timeline reads are not open")
        request = timeline_pb2.GetInteractionsRequest(tenant=tenant, event_ids=event_ids)
        try:
            response: timeline_pb2.GetInteractionsResponse = await self._stub.GetInteractions(
                request, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            if len(event_ids) == 1:
                # One entry larger than a response: its words stay out of topics.
                log.warning("an entry is too large to read back; left out")
                return []
            half = len(event_ids) // 2
            return [
                *await self._some(tenant, event_ids[:half]),
                *await self._some(tenant, event_ids[half:]),
            ]
        return list(response.entries)
