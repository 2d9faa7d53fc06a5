"""Supervisors' and analysts' fields: service metrics, the cases behind them, customers at risk.

Everything is read through the insights service's gRPC API; the customer and case behind a
figure or a risk come through the same DataLoaders as the rest of the schema.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from google.protobuf.message import DecodeError

from gateway.bus import SlowConsumer
from gateway.context import Info
from gateway.errors import bad_user_input
from gateway.nodes import Case, Customer, load_case, load_customer
from gateway.paging import check_first
from gateway.scalars import check_id
from gateway.topics import Topic
from tsunagu.bus.permissions import at_risk_subject
from tsunagu.v1 import insights_pb2

# The cost limits count no page above 200 (gateway.limits); the CSV export has no page.
MAX_METRIC_CASES = 200
MAX_AT_RISK = 200
MAX_SIMILAR = 50


@strawberry.enum(description="How figures are bucketed in time, in the tenant's time zone.")
class MetricPeriod(enum.Enum):
    ALL = insights_pb2.METRIC_PERIOD_UNSPECIFIED
    DAY = insights_pb2.METRIC_PERIOD_DAY
    WEEK = insights_pb2.METRIC_PERIOD_WEEK
    MONTH = insights_pb2.METRIC_PERIOD_MONTH


@strawberry.enum(description="What figures are grouped by.")
class MetricGroup(enum.Enum):
    NONE = insights_pb2.METRIC_GROUP_UNSPECIFIED
    AGENT = insights_pb2.METRIC_GROUP_AGENT
    CHANNEL = insights_pb2.METRIC_GROUP_CHANNEL
    QUEUE = insights_pb2.METRIC_GROUP_QUEUE
    TOPIC = insights_pb2.METRIC_GROUP_TOPIC
    BUSINESS_HOURS = insights_pb2.METRIC_GROUP_BUSINESS_HOURS


@strawberry.type(description="One figure (docs/insights.md); null when nothing to compute on.")
class MetricFigure:
    name: str
    value: float | None


@strawberry.type
class CancellationReasonCount:
    reason: str
    count: int


@strawberry.type(description="The figures of one group in one period.")
class ServiceMetricRow:
    period: str = strawberry.field(description="Local start date (ISO); empty for ALL.")
    group: str
    contacts: int
    unique_customers: int = strawberry.field(
        description="Distinct people (merged customers counted once), never contacts."
    )
    figures: list[MetricFigure]
    cancellations_by_reason: list[CancellationReasonCount]

    @strawberry.field
    def figure(self, name: str) -> float | None:
        """One figure by name; null when absent or undefined."""
        return next((f.value for f in self.figures if f.name == name), None)


@strawberry.type
class ServiceMetrics:
    time_zone: str
    rows: list[ServiceMetricRow]


@strawberry.type(description="A case a figure counted, under the identity it counted it as.")
class MetricCase:
    case_id: strawberry.ID
    customer_id: strawberry.ID
    opened_at: datetime

    @strawberry.field
    async def case(self, info: Info) -> Case | None:
        return await load_case(info, str(self.case_id))

    @strawberry.field
    async def customer(self, info: Info) -> Customer | None:
        return await load_customer(info, str(self.customer_id))


@strawberry.type
class MetricCases:
    cases: list[MetricCase]
    truncated: bool
    request: strawberry.Private[insights_pb2.ListFigureCasesRequest]

    @strawberry.field
    async def csv(self, info: Info) -> str:
        """Every case behind the figure (not only this page), one CSV row per case."""
        export = insights_pb2.ListFigureCasesRequest()
        export.CopyFrom(self.request)
        export.limit = 0
        return (await info.context.insights.export_cases(export)).csv


@strawberry.type(description="Why a customer is at risk, and the evidence on the timeline.")
class RiskReason:
    code: str
    weight: int
    case_id: strawberry.ID | None
    event_id: strawberry.ID | None


@strawberry.type
class CustomerAtRisk:
    customer_id: strawberry.ID
    score: int
    reasons: list[RiskReason]

    @strawberry.field
    async def customer(self, info: Info) -> Customer | None:
        return await load_customer(info, str(self.customer_id))


def _query(
    since: datetime, until: datetime, period: MetricPeriod, group_by: MetricGroup
) -> insights_pb2.MetricsQuery:
    if since.tzinfo is None or until.tzinfo is None:
        raise bad_user_input("`since` and `until` need a time zone offset.")
    q = insights_pb2.MetricsQuery(period=period.value, group_by=group_by.value)
    q.since.FromDatetime(since)
    q.until.FromDatetime(until)
    return q


async def resolve_service_metrics(
    info: Info,
    *,
    since: datetime,
    until: datetime,
    period: MetricPeriod = MetricPeriod.ALL,
    group_by: MetricGroup = MetricGroup.NONE,
) -> ServiceMetrics:
    """Every figure per period and group for the cases opened in [since, until)."""
    request = insights_pb2.GetServiceMetricsRequest(
        tenant=info.context.principal.tenant, query=_query(since, until, period, group_by)
    )
    found = await info.context.insights.service_metrics(request)
    return ServiceMetrics(
        time_zone=found.time_zone,
        rows=[
            ServiceMetricRow(
                period=row.period,
                group=row.group,
                contacts=row.contacts,
                unique_customers=row.unique_customers,
                figures=[
                    MetricFigure(name=f.name, value=f.value if f.defined else None)
                    for f in row.figures
                ],
                cancellations_by_reason=[
                    CancellationReasonCount(reason=k, count=v)
                    for k, v in sorted(row.cancellations_by_reason.items())
                ],
            )
            for row in found.rows
        ],
    )


async def resolve_metric_cases(
    info: Info,
    *,
    since: datetime,
    until: datetime,
    period: MetricPeriod = MetricPeriod.ALL,
    group_by: MetricGroup = MetricGroup.NONE,
    figure: str = "",
    row_period: str = "",
    row_group: str = "",
    first: int = 100,
) -> MetricCases:
    """The cases behind one figure of one row (`rowPeriod`, `rowGroup` as the row shows them)."""
    request = insights_pb2.ListFigureCasesRequest(
        tenant=info.context.principal.tenant,
        query=_query(since, until, period, group_by),
        figure=figure,
        period=row_period,
        group=row_group,
        limit=check_first(first, MAX_METRIC_CASES),
    )
    found = await info.context.insights.figure_cases(request)
    return MetricCases(
        cases=[
            MetricCase(
                case_id=strawberry.ID(c.case_id),
                customer_id=strawberry.ID(c.customer_id),
                opened_at=c.opened_at.ToDatetime().astimezone(since.tzinfo),
            )
            for c in found.cases
        ],
        truncated=found.truncated,
        request=request,
    )


async def resolve_customers_at_risk(info: Info, first: int = 50) -> list[CustomerAtRisk]:
    """The tenant's customers at risk, highest score first, with reasons and evidence."""
    limit = check_first(first, MAX_AT_RISK)
    found = await info.context.insights.customers_at_risk(
        info.context.principal.tenant, limit=limit
    )
    return [
        CustomerAtRisk(
            customer_id=strawberry.ID(c.customer_id),
            score=c.score,
            reasons=[
                RiskReason(
                    code=r.code,
                    weight=r.weight,
                    case_id=strawberry.ID(r.case_id) if r.case_id else None,
                    event_id=strawberry.ID(r.event_id) if r.event_id else None,
                )
                for r in c.reasons
            ],
        )
        for c in found.customers
    ]


@strawberry.type(description="Customers whose at-risk reasons changed: re-read them.")
class AtRiskChange:
    customer_ids: list[strawberry.ID]


async def at_risk_changed(info: Info) -> AsyncGenerator[AtRiskChange, None]:
    """Every change of the tenant's customers at risk, as the insights service announces it."""
    context = info.context
    tenant = context.principal.tenant
    async with context.bus.listen(
        at_risk_subject(tenant), queue_size=context.subscription_queue_size
    ) as heard:
        while True:
            data = await heard.get()
            if data is None:
                raise SlowConsumer
            try:
                change = insights_pb2.AtRiskChanged.FromString(data)
            except DecodeError:
                continue
            if change.tenant != tenant:
                continue
            yield AtRiskChange(customer_ids=[strawberry.ID(c) for c in change.customer_ids])


@strawberry.type(description="A topic with its volume, trend and the figures of its cases.")
class VocTopic:
    topic: Topic
    examples: list[TopicExample]
    messages: int = strawberry.field(description="Messages on the topic in the range.")
    this_week: int = strawberry.field(description="Messages in the 7 days before `until`.")
    last_week: int = strawberry.field(description="Messages in the 7 days before those.")
    spike: bool = strawberry.field(description="This week at least twice last week, and ≥ 5.")
    cases: int = strawberry.field(description="Cases opened in the range on the topic.")
    figures: list[MetricFigure]

    @strawberry.field
    def figure(self, name: str) -> float | None:
        """One figure of the topic's cases by name (e.g. csat_mean, escalation_rate)."""
        return next((f.value for f in self.figures if f.name == name), None)


@strawberry.type(description="A customer's message, cleaned: personal data masked.")
class TopicExample:
    event_id: strawberry.ID
    text: str


@strawberry.type
class VocTopics:
    topics: list[VocTopic]
    unplaced: int = strawberry.field(description="Messages on no topic yet.")


async def resolve_voc_topics(info: Info, *, since: datetime, until: datetime) -> VocTopics:
    """The tenant's topics, largest first, with trend, spikes and their cases' figures."""
    q = _query(since, until, MetricPeriod.ALL, MetricGroup.NONE)
    request = insights_pb2.ListVocTopicsRequest(
        tenant=info.context.principal.tenant, since=q.since, until=q.until
    )
    found = await info.context.insights.voc_topics(request)
    return VocTopics(
        unplaced=found.unplaced,
        topics=[
            VocTopic(
                topic=Topic.from_proto(t.topic),
                examples=[
                    TopicExample(event_id=strawberry.ID(e.event_id), text=e.text)
                    for e in t.examples
                ],
                messages=t.messages,
                this_week=t.this_week,
                last_week=t.last_week,
                spike=t.spike,
                cases=t.cases,
                figures=[
                    MetricFigure(name=f.name, value=f.value if f.defined else None)
                    for f in t.figures
                ],
            )
            for t in found.topics
        ],
    )


@strawberry.type(description="How a rebuild of the topics went.")
class TopicsRebuilt:
    messages: int
    topics: int


async def _rename_topic(info: Info, topic_id: strawberry.ID, name: str) -> Topic:
    found = await info.context.insights.rename_topic(
        info.context.principal.tenant, str(topic_id), name
    )
    return Topic.from_proto(found)


async def _merge_topics(info: Info, into: strawberry.ID, other: strawberry.ID) -> Topic:
    found = await info.context.insights.merge_topics(
        info.context.principal.tenant, str(into), str(other)
    )
    return Topic.from_proto(found)


async def _rebuild_topics(info: Info) -> TopicsRebuilt:
    done = await info.context.insights.rebuild_topics(info.context.principal.tenant)
    return TopicsRebuilt(messages=done.messages, topics=done.topics)


@strawberry.type(description="A resolved case like the one asked about, and what solved it.")
class SimilarCase:
    case_id: strawberry.ID
    score: float = strawberry.field(description="Similarity of the customers' words, 0..1.")
    resolution_note: str

    @strawberry.field
    async def case(self, info: Info) -> Case | None:
        return await load_case(info, str(self.case_id))


@strawberry.type(description="A resolution promoted to shared knowledge.")
class KnowledgeArticle:
    id: strawberry.ID
    title: str
    body: str
    score: float | None = strawberry.field(description="How well it matches the query.")

    @classmethod
    def from_proto(cls, a: insights_pb2.KnowledgeArticle, *, scored: bool) -> KnowledgeArticle:
        return cls(
            id=strawberry.ID(a.id), title=a.title, body=a.body, score=a.score if scored else None
        )


async def resolve_similar_resolved_cases(
    info: Info, case_id: strawberry.ID, first: int = 5
) -> list[SimilarCase]:
    """The tenant's resolved cases most like this case, best first, with their notes."""
    found = await info.context.insights.similar_cases(
        info.context.principal.tenant,
        check_id("caseId", case_id),
        limit=check_first(first, MAX_SIMILAR),
    )
    return [
        SimilarCase(
            case_id=strawberry.ID(c.case_id), score=c.score, resolution_note=c.resolution_note
        )
        for c in found
    ]


async def resolve_knowledge_articles(
    info: Info, query: str, first: int = 10
) -> list[KnowledgeArticle]:
    """Knowledge articles matching `query` (1-500 characters), best first."""
    found = await info.context.insights.search_articles(
        info.context.principal.tenant, query, limit=check_first(first, MAX_SIMILAR)
    )
    return [KnowledgeArticle.from_proto(a, scored=True) for a in found]


async def _promote_resolution(
    info: Info, case_id: strawberry.ID, title: str, body: str = ""
) -> KnowledgeArticle:
    found = await info.context.insights.promote_resolution(
        info.context.principal.tenant, check_id("caseId", case_id), title=title, body=body
    )
    return KnowledgeArticle.from_proto(found, scored=False)


@strawberry.type
class TopicMutation:
    """Supervisors' hands on the topics; merged into the schema's Mutation type."""

    rename_topic: Topic = strawberry.mutation(
        resolver=_rename_topic,
        description="Name a topic (1-80 characters); rebuilds keep the name.",
    )
    merge_topics: Topic = strawberry.mutation(
        resolver=_merge_topics,
        description="Fold topic `other` into `into`; rebuilds keep the merge.",
    )
    promote_resolution: KnowledgeArticle = strawberry.mutation(
        resolver=_promote_resolution,
        description=(
            "Make a resolved case's resolution a knowledge article (title 1-200 characters; "
            "body: the resolution note unless given)."
        ),
    )
    rebuild_topics: TopicsRebuilt = strawberry.mutation(
        resolver=_rebuild_topics,
        description="Group every message again (ids, names and merges kept).",
    )
