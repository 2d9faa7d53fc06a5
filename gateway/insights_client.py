"""Client of the insights service's gRPC API (service metrics, the cases behind them, risk)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeVar

import grpc
from google.protobuf.message import Message
from strawberry.dataloader import DataLoader

from gateway.errors import ErrorCode, GatewayError
from tsunagu.grpc_channels import open_channel
from tsunagu.lifecycle import Lifecycle
from tsunagu.rpc import MAX_RESPONSE_BYTES
from tsunagu.v1 import insights_pb2, insights_pb2_grpc

if TYPE_CHECKING:
    from tsunagu.v1.insights_pb2_grpc import InsightsServiceAsyncStub

_log = logging.getLogger(__name__)
_Request = TypeVar("_Request", bound=Message)
_Response = TypeVar("_Response", bound=Message)
# GetMessageTopics takes at most this many ids.
MAX_EVENT_IDS = 500
_UNAVAILABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def insights_unavailable() -> GatewayError:
    return GatewayError(
        ErrorCode.INSIGHTS_UNAVAILABLE, "The insights service is unavailable; try again shortly."
    )


class InsightsClient(Lifecycle):
    """Owns the channel to ``tsunagu.v1.InsightsService``; opened in the gateway's lifespan."""

    def __init__(self, *, address: str, timeout_seconds: float, token: str = "") -> None:
        self.address = address
        self._timeout = timeout_seconds
        self._token = token
        self._channel: grpc.aio.Channel | None = None
        self._stub: InsightsServiceAsyncStub | None = None

    async def open(self) -> None:
        self._channel = open_channel(
            self.address,
            token=self._token or None,
            options=[("grpc.max_receive_message_length", MAX_RESPONSE_BYTES)],
        )
        self._stub = insights_pb2_grpc.InsightsServiceStub(self._channel)

    async def close(self, grace: float | None = None) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close(grace)

    def _require_stub(self) -> InsightsServiceAsyncStub:
        if self._stub is None:
            raise insights_unavailable()
        return self._stub

    async def service_metrics(
        self, request: insights_pb2.GetServiceMetricsRequest
    ) -> insights_pb2.GetServiceMetricsResponse:
        return await self._call(self._require_stub().GetServiceMetrics, request)

    async def figure_cases(
        self, request: insights_pb2.ListFigureCasesRequest
    ) -> insights_pb2.ListFigureCasesResponse:
        return await self._call(self._require_stub().ListFigureCases, request)

    async def export_cases(
        self, request: insights_pb2.ListFigureCasesRequest
    ) -> insights_pb2.ExportCasesResponse:
        return await self._call(self._require_stub().ExportCases, request)

    async def customers_at_risk(
        self, tenant: str, *, limit: int
    ) -> insights_pb2.ListCustomersAtRiskResponse:
        request = insights_pb2.ListCustomersAtRiskRequest(tenant=tenant, limit=limit)
        return await self._call(self._require_stub().ListCustomersAtRisk, request)

    async def voc_topics(
        self, request: insights_pb2.ListVocTopicsRequest
    ) -> insights_pb2.ListVocTopicsResponse:
        return await self._call(self._require_stub().ListVocTopics, request)

    async def message_topics(
        self, tenant: str, event_ids: list[str]
    ) -> dict[str, insights_pb2.TopicSummary]:
        request = insights_pb2.GetMessageTopicsRequest(tenant=tenant, event_ids=event_ids)
        found = await self._call(self._require_stub().GetMessageTopics, request)
        return dict(found.topics)

    async def rename_topic(
        self, tenant: str, topic_id: str, name: str
    ) -> insights_pb2.TopicSummary:
        request = insights_pb2.RenameTopicRequest(tenant=tenant, topic_id=topic_id, name=name)
        return (await self._call(self._require_stub().RenameTopic, request)).topic

    async def merge_topics(self, tenant: str, into: str, other: str) -> insights_pb2.TopicSummary:
        request = insights_pb2.MergeTopicsRequest(tenant=tenant, into=into, other=other)
        return (await self._call(self._require_stub().MergeTopics, request)).topic

    async def rebuild_topics(self, tenant: str) -> insights_pb2.RebuildTopicsResponse:
        request = insights_pb2.RebuildTopicsRequest(tenant=tenant)
        return await self._call(self._require_stub().RebuildTopics, request)

    async def similar_cases(
        self, tenant: str, case_id: str, *, limit: int
    ) -> list[insights_pb2.SimilarCase]:
        request = insights_pb2.SimilarResolvedCasesRequest(
            tenant=tenant, case_id=case_id, limit=limit
        )
        return list((await self._call(self._require_stub().SimilarResolvedCases, request)).cases)

    async def promote_resolution(
        self, tenant: str, case_id: str, *, title: str, body: str
    ) -> insights_pb2.KnowledgeArticle:
        request = insights_pb2.PromoteResolutionRequest(
            tenant=tenant, case_id=case_id, title=title, body=body
        )
        return await self._call(self._require_stub().PromoteResolution, request)

    async def search_articles(
        self, tenant: str, query: str, *, limit: int
    ) -> list[insights_pb2.KnowledgeArticle]:
        request = insights_pb2.SearchArticlesRequest(tenant=tenant, query=query, limit=limit)
        return list((await self._call(self._require_stub().SearchArticles, request)).articles)

    def topic_loader(
        self, tenant: str, *, cache: bool
    ) -> DataLoader[str, insights_pb2.TopicSummary | None]:
        """Messages' topics by event id, batched into one call per operation's tick."""

        async def load(ids: list[str]) -> list[insights_pb2.TopicSummary | None]:
            found: dict[str, insights_pb2.TopicSummary] = {}
            for offset in range(0, len(ids), MAX_EVENT_IDS):
                found.update(
                    await self.message_topics(tenant, ids[offset : offset + MAX_EVENT_IDS])
                )
            return [found.get(i) for i in ids]

        return DataLoader(load_fn=load, cache=cache)

    async def _call(
        self, rpc: grpc.aio.UnaryUnaryMultiCallable[_Request, _Response], request: _Request
    ) -> _Response:
        try:
            return await rpc(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code == grpc.StatusCode.NOT_FOUND:
                raise GatewayError(ErrorCode.NOT_FOUND, error.details() or code.name) from error
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise GatewayError(
                    ErrorCode.BAD_USER_INPUT, error.details() or code.name
                ) from error
            if code == grpc.StatusCode.PERMISSION_DENIED:
                raise GatewayError(ErrorCode.FORBIDDEN, "Not allowed.") from error
            _log.warning("insights call failed: %s", code.name)
            raise insights_unavailable() from error
