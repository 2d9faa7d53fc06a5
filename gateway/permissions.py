"""Who may read or do what: the role x operation matrix, enforced on every GraphQL field.

Every field of the schema is one of a few operations (``Operation``): reading personal data,
reading case metrics, acting, merging, ... ``ROLES`` says which roles may perform each
operation; ``TYPE_DECISIONS`` and ``FIELD_DECISIONS`` say which operation each field is.
``enforce`` wraps every field's resolver (and every subscription's source) with the check,
and refuses to build a schema with a field that has no decision, so a new field cannot
ship unguarded. ``docs/security.md`` (its role matrix section) explains the choices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from enum import StrEnum
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    default_field_resolver,
)

from gateway.auth import Principal
from gateway.errors import ErrorCode, GatewayError
from gateway.roles import Role


class Operation(StrEnum):
    """What a field does, as far as authorisation is concerned (the matrix's columns)."""

    # Names, identifiers, what customers and agents said: profiles, timelines, case content.
    READ_PERSONAL_DATA = "read personal data"
    # Finding customers by a prefix: a way to page through the customer base.
    SEARCH_CUSTOMERS = "search customers"
    # Case status, SLA clocks, counts, tags, scores: no personal data.
    READ_CASE_METRICS = "read case metrics"
    # Lists of cases across agents (an agent lists its own or one customer's cases).
    LIST_ALL_CASES = "list all cases"
    # Merge history with its evidence (other customers' identifiers), merge suggestions.
    READ_IDENTITY_LEDGER = "read the identity ledger"
    # Notes, handoffs, escalations, resolutions, ...: agent actions on a customer.
    ACT = "act on customers"
    # Merging customers, undoing merges, dismissing suggestions.
    MERGE = "merge customers"
    # Live timelines and cases over WebSocket.
    WATCH = "watch live updates"
    # Paging and result envelopes: carry no data of their own.
    STRUCTURE = "read result structure"
    # Showing a masked value (a phone number, an email address) in full, for a reason.
    REVEAL = "reveal masked values"
    # Who accessed whose data: the read audit and its verification.
    READ_AUDIT = "read the audit"
    # Everything held about one customer in one document (a subject access request).
    EXPORT = "export a customer"
    # Service metrics and the (pseudonymous) cases behind them, from the insights service.
    READ_SERVICE_METRICS = "read service metrics"
    # Which customers may be drifting away, and why: a supervisor's list to act on.
    READ_AT_RISK = "read customers at risk"
    # Renaming, merging and rebuilding the voice-of-the-customer topics.
    MANAGE_TOPICS = "manage topics"
    # Promoting resolutions to knowledge articles.
    MANAGE_KNOWLEDGE = "manage knowledge articles"
    # Crypto-shredding a person (irreversible), and reading the erasure ledger.
    ERASE = "erase customers"
    # Whether a customer met an erased person's identifier: no personal data.
    READ_ERASURE_STATUS = "read erasure status"


_ALL = frozenset(Role)

ROLES: Mapping[Operation, frozenset[Role]] = {
    Operation.READ_PERSONAL_DATA: frozenset({Role.AGENT, Role.SUPERVISOR, Role.PRIVACY_OFFICER}),
    Operation.SEARCH_CUSTOMERS: frozenset({Role.SUPERVISOR, Role.PRIVACY_OFFICER}),
    Operation.READ_CASE_METRICS: _ALL,
    Operation.LIST_ALL_CASES: frozenset({Role.SUPERVISOR, Role.ANALYST, Role.ADMIN}),
    Operation.READ_IDENTITY_LEDGER: frozenset({Role.SUPERVISOR, Role.PRIVACY_OFFICER}),
    Operation.ACT: frozenset({Role.AGENT, Role.SUPERVISOR}),
    Operation.MERGE: frozenset({Role.SUPERVISOR}),
    Operation.WATCH: frozenset({Role.AGENT, Role.SUPERVISOR}),
    Operation.STRUCTURE: _ALL,
    Operation.REVEAL: frozenset({Role.AGENT, Role.SUPERVISOR, Role.PRIVACY_OFFICER}),
    Operation.READ_AUDIT: frozenset({Role.PRIVACY_OFFICER}),
    Operation.EXPORT: frozenset({Role.PRIVACY_OFFICER}),
    Operation.READ_SERVICE_METRICS: frozenset({Role.SUPERVISOR, Role.ANALYST}),
    Operation.READ_AT_RISK: frozenset({Role.SUPERVISOR}),
    Operation.MANAGE_TOPICS: frozenset({Role.SUPERVISOR}),
    Operation.MANAGE_KNOWLEDGE: frozenset({Role.SUPERVISOR}),
    Operation.ERASE: frozenset({Role.PRIVACY_OFFICER}),
    Operation.READ_ERASURE_STATUS: frozenset({Role.AGENT, Role.SUPERVISOR, Role.PRIVACY_OFFICER}),
}
"""Which roles may perform each operation; a principal needs one of them."""

_PERSONAL = Operation.READ_PERSONAL_DATA
_METRICS = Operation.READ_CASE_METRICS
_LEDGER = Operation.READ_IDENTITY_LEDGER

TYPE_DECISIONS: Mapping[str, Operation] = {
    "Mutation": Operation.ACT,
    "Subscription": Operation.WATCH,
    "ActionResult": Operation.STRUCTURE,
    "PageInfo": Operation.STRUCTURE,
    "CaseConnection": Operation.STRUCTURE,
    "CaseEdge": Operation.STRUCTURE,
    "InteractionConnection": Operation.STRUCTURE,
    "InteractionEdge": Operation.STRUCTURE,
    "TimelineUpdate": Operation.WATCH,
    "CaseUpdate": Operation.WATCH,
    "Case": _METRICS,
    "FollowUpTask": _METRICS,
    "CsatResponse": _METRICS,
    "CancellationRequestAction": _METRICS,
    "MergeRecord": _LEDGER,
    "LinkedIdentifier": _LEDGER,
    "MergeSuggestion": _LEDGER,
    "Revealed": Operation.REVEAL,
    "AuditRecord": Operation.READ_AUDIT,
    "AuditChainVerdict": Operation.READ_AUDIT,
    "AuditConnection": Operation.STRUCTURE,
    "AuditRecordEdge": Operation.STRUCTURE,
    "CustomerExport": Operation.EXPORT,
    **dict.fromkeys(
        (
            "ServiceMetrics",
            "ServiceMetricRow",
            "MetricFigure",
            "CancellationReasonCount",
            "MetricCases",
            "MetricCase",
            "VocTopics",
            "VocTopic",
            "TopicExample",
        ),
        Operation.READ_SERVICE_METRICS,
    ),
    "CustomerAtRisk": Operation.READ_AT_RISK,
    "AtRiskChange": Operation.READ_AT_RISK,
    "RiskReason": Operation.READ_AT_RISK,
    # A topic's id, label and terms: words of many customers, masked; on every timeline.
    "Topic": _METRICS,
    "TopicsRebuilt": Operation.MANAGE_TOPICS,
    # Other customers' cases and what agents wrote about them.
    "SimilarCase": _PERSONAL,
    # Curated by supervisors for everyone: no one customer's data.
    "KnowledgeArticle": _METRICS,
    "ErasureStatus": Operation.READ_ERASURE_STATUS,
    # Certificates name who erased whom and why: the privacy officer's alone.
    "ErasureCertificate": Operation.ERASE,
    "AnonymousCounts": Operation.ERASE,
    "NamedCount": Operation.ERASE,
    **dict.fromkeys(
        (
            "Customer",
            "ChannelCount",
            "AgentRemark",
            "Identifier",
            "ProtectedIdentifier",
            "Actor",
            "Interaction",
            "Attachment",
            "AgentActionDetail",
            "CallDetail",
            "ChatDetail",
            "EmailDetail",
            "SmsDetail",
            "SocialDetail",
            "WebFormDetail",
            "FormField",
            "NoteAction",
            "HandoffAction",
            "EscalationAction",
            "ProgressUpdateAction",
            "TransferAction",
            "ResolutionAction",
            "TagAction",
            "CancellationOutcomeAction",
            "CompleteFollowUpAction",
            "MergeCustomersAction",
            "SplitMergeAction",
            "DismissMergeSuggestionAction",
        ),
        _PERSONAL,
    ),
}
"""The operation of every field of a type, unless ``FIELD_DECISIONS`` names the field."""

FIELD_DECISIONS: Mapping[str, Operation] = {
    "Query.customer": _PERSONAL,
    "Query.customerByIdentifier": _PERSONAL,
    "Query.searchCustomers": Operation.SEARCH_CUSTOMERS,
    "Query.case": _METRICS,
    # Narrowed further in the resolver: without LIST_ALL_CASES, own or one customer's cases.
    "Query.cases": _METRICS,
    "Query.mergeSuggestions": _LEDGER,
    "Mutation.mergeCustomers": Operation.MERGE,
    "Mutation.splitMerge": Operation.MERGE,
    "Mutation.dismissMergeSuggestion": Operation.MERGE,
    "Mutation.reveal": Operation.REVEAL,
    "Query.auditTrail": Operation.READ_AUDIT,
    "Query.auditLog": Operation.READ_AUDIT,
    "Query.verifyAuditChain": Operation.READ_AUDIT,
    "Query.exportCustomer": Operation.EXPORT,
    "Mutation.eraseCustomer": Operation.ERASE,
    "Query.erasureStatus": Operation.READ_ERASURE_STATUS,
    "ErasureStatus.certificates": Operation.ERASE,
    "ActionResult.customer": _PERSONAL,
    "ActionResult.case": _METRICS,
    "TimelineUpdate.entry": _PERSONAL,
    "CaseUpdate.entry": _PERSONAL,
    "CaseUpdate.case": _METRICS,
    "Customer.mergeHistory": _LEDGER,
    "Customer.mergeSuggestions": _LEDGER,
    "MergeSuggestion.customers": _PERSONAL,
    # What a case is about in words, and who the customer is: personal.
    "Case.customer": _PERSONAL,
    "Case.timeline": _PERSONAL,
    "Case.escalationReason": _PERSONAL,
    "Case.lastHandoff": _PERSONAL,
    "Case.resolutionSummary": _PERSONAL,
    "FollowUpTask.reason": _PERSONAL,
    "CsatResponse.comment": _PERSONAL,
    "CancellationRequestAction.reasonDetail": _PERSONAL,
    "Query.serviceMetrics": Operation.READ_SERVICE_METRICS,
    "Query.metricCases": Operation.READ_SERVICE_METRICS,
    "Query.customersAtRisk": Operation.READ_AT_RISK,
    "Subscription.atRiskChanged": Operation.READ_AT_RISK,
    "Query.vocTopics": Operation.READ_SERVICE_METRICS,
    "Mutation.renameTopic": Operation.MANAGE_TOPICS,
    "Mutation.mergeTopics": Operation.MANAGE_TOPICS,
    "Mutation.rebuildTopics": Operation.MANAGE_TOPICS,
    "Mutation.promoteResolution": Operation.MANAGE_KNOWLEDGE,
    "Query.similarResolvedCases": _PERSONAL,
    "Query.knowledgeArticles": _METRICS,
    "SimilarCase.case": _METRICS,
    "MetricCase.case": _METRICS,
    "MetricCase.customer": _PERSONAL,
    "CustomerAtRisk.customer": _PERSONAL,
}
"""Fields whose operation differs from their type's (every root Query field is here)."""


class UndecidedField(RuntimeError):
    """Start-up error: a schema field has no decision in the matrix."""


def decision(type_name: str, field_name: str) -> Operation | None:
    """The operation a field is, or ``None`` when the matrix has no decision for it.

    Args:
        type_name: The GraphQL object type (``Customer``).
        field_name: The GraphQL field name (``displayName``).

    Returns:
        The field's operation.
    """
    return FIELD_DECISIONS.get(f"{type_name}.{field_name}") or TYPE_DECISIONS.get(type_name)


def may(principal: Principal, operation: Operation) -> bool:
    """Whether one of the principal's roles allows the operation (no roles: nothing)."""
    return not principal.roles.isdisjoint(ROLES[operation])


def require(principal: Principal, operation: Operation) -> None:
    """Refuse the principal unless one of its roles allows the operation.

    Raises:
        GatewayError: ``FORBIDDEN``, carrying no data.
    """
    if not may(principal, operation):
        raise GatewayError(ErrorCode.FORBIDDEN, f"Your roles do not allow you to {operation}.")


def enforce(schema: GraphQLSchema) -> None:
    """Guard every field of ``schema`` with the check of its operation.

    Args:
        schema: The executable schema (Strawberry's ``_schema``), changed in place.

    Raises:
        UndecidedField: A field has no decision; the schema must not serve it.
    """
    undecided = []
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            operation = decision(type_.name, name)
            if operation is None:
                undecided.append(f"{type_.name}.{name}")
                continue
            field.resolve = _guarded(field.resolve or default_field_resolver, operation)
            if field.subscribe is not None:
                # Checked before the subscription starts following anything.
                field.subscribe = _guarded(field.subscribe, operation)
    if undecided:
        raise UndecidedField(
            f"no role decision in gateway.permissions for: {', '.join(sorted(undecided))}"
        )


def _guarded(resolve: Callable[..., Any], operation: Operation) -> Callable[..., Any]:
    if getattr(resolve, "guarded_by", None) is not None:
        return resolve

    def guarded(source: Any, info: Any, **arguments: Any) -> Any:
        require(info.context.principal, operation)
        return resolve(source, info, **arguments)

    guarded.guarded_by = operation  # type: ignore[attr-defined]
    return guarded


def object_fields(schema: GraphQLSchema) -> Iterator[tuple[str, str, GraphQLField]]:
    """Every field of the schema's own object types: ``(type name, field name, field)``.

    Schema-wide hooks (masking, the read audit) wrap resolvers found this way.
    """
    for type_ in schema.type_map.values():
        if isinstance(type_, GraphQLObjectType) and not type_.name.startswith("__"):
            for name, field in type_.fields.items():
                yield type_.name, name, field


def named_type(type_: GraphQLOutputType) -> str:
    """The name of a field's type without its lists and non-nulls (``[String!]!`` → ``String``)."""
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return str(getattr(type_, "name", ""))
