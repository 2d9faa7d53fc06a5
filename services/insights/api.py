"""The insights gRPC API: decode → reader → encode; no rule of a metric lives here."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.insights.calendar import Period
from services.insights.facts import CaseFacts
from services.insights.figures import Context as FigureContext
from services.insights.figures import GroupBy, to_csv
from services.insights.reader import MetricsQuery, MetricsReader, UnknownFigure
from services.insights.solutions import NotResolved, Solutions
from services.insights.topics import Topic
from services.insights.voice import UnknownTopic, Voices
from tsunagu.contracts import ContractViolation, check_tenant
from tsunagu.v1 import insights_pb2, insights_pb2_grpc

Context = grpc.aio.ServicerContext[object, object]

_PERIODS = {
    insights_pb2.METRIC_PERIOD_UNSPECIFIED: Period.ALL,
    insights_pb2.METRIC_PERIOD_DAY: Period.DAY,
    insights_pb2.METRIC_PERIOD_WEEK: Period.WEEK,
    insights_pb2.METRIC_PERIOD_MONTH: Period.MONTH,
}
_GROUPS = {
    insights_pb2.METRIC_GROUP_UNSPECIFIED: GroupBy.NONE,
    insights_pb2.METRIC_GROUP_AGENT: GroupBy.AGENT,
    insights_pb2.METRIC_GROUP_CHANNEL: GroupBy.CHANNEL,
    insights_pb2.METRIC_GROUP_QUEUE: GroupBy.QUEUE,
    insights_pb2.METRIC_GROUP_TOPIC: GroupBy.TOPIC,
    insights_pb2.METRIC_GROUP_BUSINESS_HOURS: GroupBy.BUSINESS_HOURS,
}
# A year of cases at most per question: the figures are read from the cases each time.
MAX_RANGE_SECONDS = 366 * 24 * 3600.0
DEFAULT_CASES, MAX_CASES, MAX_EXPORT = 100, 1000, 50_000
DEFAULT_AT_RISK, MAX_AT_RISK = 50, 200
MAX_EVENT_IDS = 500
MAX_TOPIC_NAME = 80
MAX_SIMILAR = 50
MAX_TITLE, MAX_BODY, MAX_QUERY = 200, 4000, 500
_MAX_LABEL = 256


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def _timestamp(at: float) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(datetime.fromtimestamp(at, UTC))
    return ts


async def _invalid(context: Context, message: str) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)


async def _query(tenant: str, q: insights_pb2.MetricsQuery, context: Context) -> MetricsQuery:
    try:
        check_tenant(tenant)
    except ContractViolation as exc:
        await _invalid(context, str(exc))
        raise
    if not (q.HasField("since") and q.HasField("until")):
        await _invalid(context, "since and until are required")
    since, until = _seconds(q.since), _seconds(q.until)
    if not 0 < until - since <= MAX_RANGE_SECONDS:
        await _invalid(context, "until must be after since, at most 366 days later")
    if q.period not in _PERIODS or q.group_by not in _GROUPS:
        await _invalid(context, "unknown period or group_by")
    return MetricsQuery(tenant, since, until, _PERIODS[q.period], _GROUPS[q.group_by])


async def _limit(value: int, *, default: int, most: int, context: Context) -> int:
    if not 0 <= value <= most:
        await _invalid(context, f"limit must be 0..{most}")
    return value or default


def _summary(topic: Topic) -> insights_pb2.TopicSummary:
    return insights_pb2.TopicSummary(
        id=topic.id, label=topic.label, terms=topic.terms, size=topic.size, named=topic.named
    )


async def _tenant(tenant: str, context: Context) -> str:
    try:
        return check_tenant(tenant)
    except ContractViolation as exc:
        await _invalid(context, str(exc))
        raise


async def _ids(context: Context, what: str, *ids: str) -> None:
    if any(not 0 < len(i) <= _MAX_LABEL for i in ids):
        await _invalid(context, f"{what} is 1..256 characters")


class InsightsApi(insights_pb2_grpc.InsightsServiceServicer):
    """Thin translator over `MetricsReader` and `Voices`."""

    def __init__(self, reader: MetricsReader, voices: Voices, solutions: Solutions) -> None:
        self._reader = reader
        self._voices = voices
        self._solutions = solutions

    async def GetServiceMetrics(
        self, request: insights_pb2.GetServiceMetricsRequest, context: Context
    ) -> insights_pb2.GetServiceMetricsResponse:
        q = await _query(request.tenant, request.query, context)
        response = insights_pb2.GetServiceMetricsResponse(
            time_zone=self._reader.calendar(q.tenant).zone
        )
        for row in await self._reader.figures(q):
            out = response.rows.add(
                period=row.period,
                group=row.group,
                contacts=row.contacts,
                unique_customers=row.unique_customers,
            )
            for name, value in row.values.items():
                out.figures.add(name=name, value=value or 0.0, defined=value is not None)
            out.cancellations_by_reason.update(row.cancellations_by_reason)
        return response

    async def _cases(
        self,
        request: insights_pb2.ListFigureCasesRequest,
        context: Context,
        *,
        default: int,
        most: int,
    ) -> tuple[MetricsQuery, list[CaseFacts], FigureContext, int]:
        """The query, the cases behind the figure of the row, their context, and the limit."""
        q = await _query(request.tenant, request.query, context)
        if max(len(request.figure), len(request.period), len(request.group)) > _MAX_LABEL:
            await _invalid(context, "figure, period and group are at most 256 characters")
        limit = await _limit(request.limit, default=default, most=most, context=context)
        try:
            cases, x = await self._reader.figure_cases(
                q, figure=request.figure, period=request.period, group=request.group
            )
        except UnknownFigure:
            await _invalid(context, "unknown figure")
            raise
        return q, cases, x, limit

    async def ListFigureCases(
        self, request: insights_pb2.ListFigureCasesRequest, context: Context
    ) -> insights_pb2.ListFigureCasesResponse:
        _q, cases, x, limit = await self._cases(
            request, context, default=DEFAULT_CASES, most=MAX_CASES
        )
        response = insights_pb2.ListFigureCasesResponse(truncated=len(cases) > limit)
        for c in cases[:limit]:
            response.cases.add(
                case_id=c.case_id,
                customer_id=x.identity(c.customer_id),
                opened_at=_timestamp(c.opened_at),
            )
        return response

    async def ExportCases(
        self, request: insights_pb2.ListFigureCasesRequest, context: Context
    ) -> insights_pb2.ExportCasesResponse:
        q, cases, x, limit = await self._cases(
            request, context, default=MAX_EXPORT, most=MAX_EXPORT
        )
        return insights_pb2.ExportCasesResponse(
            csv=to_csv(cases[:limit], x, self._reader.calendar(q.tenant)),
            truncated=len(cases) > limit,
        )

    async def ListCustomersAtRisk(
        self, request: insights_pb2.ListCustomersAtRiskRequest, context: Context
    ) -> insights_pb2.ListCustomersAtRiskResponse:
        tenant = await _tenant(request.tenant, context)
        limit = await _limit(
            request.limit, default=DEFAULT_AT_RISK, most=MAX_AT_RISK, context=context
        )
        response = insights_pb2.ListCustomersAtRiskResponse()
        for r in await self._reader.at_risk(tenant, limit=limit):
            out = response.customers.add(customer_id=r.customer_id, score=r.score)
            for reason in r.reasons:
                out.reasons.add(
                    code=reason.code,
                    weight=reason.weight,
                    case_id=reason.case_id,
                    event_id=reason.event_id,
                )
        return response

    async def ListVocTopics(
        self, request: insights_pb2.ListVocTopicsRequest, context: Context
    ) -> insights_pb2.ListVocTopicsResponse:
        q = await _query(
            request.tenant,
            insights_pb2.MetricsQuery(since=request.since, until=request.until),
            context,
        )
        topics, unplaced = await self._reader.voc_topics(q.tenant, since=q.since, until=q.until)
        response = insights_pb2.ListVocTopicsResponse(unplaced=unplaced)
        for t in topics:
            out = response.topics.add(
                topic=_summary(t.topic),
                messages=t.messages,
                this_week=t.this_week,
                last_week=t.last_week,
                spike=t.spike,
                cases=t.cases,
            )
            for event_id, text in t.examples:
                out.examples.add(event_id=event_id, text=text)
            for name, value in t.values.items():
                out.figures.add(name=name, value=value or 0.0, defined=value is not None)
        return response

    async def GetMessageTopics(
        self, request: insights_pb2.GetMessageTopicsRequest, context: Context
    ) -> insights_pb2.GetMessageTopicsResponse:
        tenant = await _tenant(request.tenant, context)
        if len(request.event_ids) > MAX_EVENT_IDS:
            await _invalid(context, f"at most {MAX_EVENT_IDS} event ids")
        found = await self._voices.topics_of(tenant, request.event_ids)
        response = insights_pb2.GetMessageTopicsResponse()
        for event_id, topic in found.items():
            response.topics[event_id].CopyFrom(_summary(topic))
        return response

    async def RenameTopic(
        self, request: insights_pb2.RenameTopicRequest, context: Context
    ) -> insights_pb2.TopicResponse:
        tenant = await _tenant(request.tenant, context)
        await _ids(context, "topic_id", request.topic_id)
        if not 0 < len(request.name.strip()) <= MAX_TOPIC_NAME:
            await _invalid(context, f"a topic name is 1..{MAX_TOPIC_NAME} characters")
        try:
            topic = await self._voices.rename(tenant, request.topic_id, request.name)
        except UnknownTopic:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such topic")
            raise
        return insights_pb2.TopicResponse(topic=_summary(topic))

    async def MergeTopics(
        self, request: insights_pb2.MergeTopicsRequest, context: Context
    ) -> insights_pb2.TopicResponse:
        tenant = await _tenant(request.tenant, context)
        await _ids(context, "a topic id", request.into, request.other)
        try:
            topic = await self._voices.merge(tenant, request.into, request.other)
        except UnknownTopic:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such topic")
            raise
        except ValueError as exc:
            # The model refuses merging a topic into itself (or into one of its aliases).
            await _invalid(context, str(exc)[:200])
            raise
        return insights_pb2.TopicResponse(topic=_summary(topic))

    async def RebuildTopics(
        self, request: insights_pb2.RebuildTopicsRequest, context: Context
    ) -> insights_pb2.RebuildTopicsResponse:
        tenant = await _tenant(request.tenant, context)
        model = await self._voices.rebuild(tenant)
        # What this build grouped: messages heard while it ran wait for the next one.
        return insights_pb2.RebuildTopicsResponse(
            messages=await self._voices.grouped(tenant), topics=len(model.topics)
        )

    async def SimilarResolvedCases(
        self, request: insights_pb2.SimilarResolvedCasesRequest, context: Context
    ) -> insights_pb2.SimilarResolvedCasesResponse:
        tenant = await _tenant(request.tenant, context)
        await _ids(context, "case_id", request.case_id)
        limit = await _limit(request.limit, default=5, most=MAX_SIMILAR, context=context)
        found = await self._solutions.similar(tenant, request.case_id, limit)
        return insights_pb2.SimilarResolvedCasesResponse(
            cases=[
                insights_pb2.SimilarCase(
                    case_id=s.case_id, score=s.score, resolution_note=s.resolution_note
                )
                for s in found
            ]
        )

    async def PromoteResolution(
        self, request: insights_pb2.PromoteResolutionRequest, context: Context
    ) -> insights_pb2.KnowledgeArticle:
        tenant = await _tenant(request.tenant, context)
        await _ids(context, "case_id", request.case_id)
        if not 0 < len(request.title.strip()) <= MAX_TITLE or len(request.body) > MAX_BODY:
            await _invalid(context, f"title 1..{MAX_TITLE} characters, body up to {MAX_BODY}")
        try:
            article = await self._solutions.promote(
                tenant, request.case_id, title=request.title, body=request.body
            )
        except NotResolved:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no resolved case with a note")
            raise
        return insights_pb2.KnowledgeArticle(id=article.id, title=article.title, body=article.body)

    async def SearchArticles(
        self, request: insights_pb2.SearchArticlesRequest, context: Context
    ) -> insights_pb2.SearchArticlesResponse:
        tenant = await _tenant(request.tenant, context)
        if not 0 < len(request.query.strip()) <= MAX_QUERY:
            await _invalid(context, f"query is 1..{MAX_QUERY} characters")
        limit = await _limit(request.limit, default=10, most=MAX_SIMILAR, context=context)
        found = await self._solutions.search(tenant, request.query, limit)
        return insights_pb2.SearchArticlesResponse(
            articles=[
                insights_pb2.KnowledgeArticle(id=a.id, title=a.title, body=a.body, score=score)
                for a, score in found
            ]
        )
