"""Masking applied to the schema: every personal string field answers through ``view``.

Fields are found, not listed: every ``String`` field (or list of them) whose role decision in
``gateway.permissions`` is personal is wrapped, so a new personal field is masked the day it
is added. ``FIELD_CLASSES`` says what a field holds where free text is not the right guess.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from inspect import isawaitable
from typing import Any

from graphql import GraphQLSchema, GraphQLString, default_field_resolver

from gateway.masking import Personal, view, view_identifier
from gateway.permissions import Operation, decision, named_type, object_fields

_PERSONAL_OPERATIONS = frozenset({Operation.READ_PERSONAL_DATA, Operation.READ_IDENTITY_LEDGER})

_OPAQUE_FIELDS = (
    "Interaction.conversationRef",
    "Interaction.language",
    "Attachment.contentType",
    "Attachment.uri",
    "Actor.id",
    "CallDetail.callId",
    "CallDetail.legId",
    "CallDetail.queue",
    "CallDetail.recordingUri",
    "CallDetail.endReason",
    "ChatDetail.sessionId",
    "ChatDetail.widgetId",
    "EmailDetail.messageId",
    "EmailDetail.inReplyTo",
    "EmailDetail.references",
    "SmsDetail.providerMessageId",
    "SocialDetail.network",
    "SocialDetail.threadId",
    "SocialDetail.postId",
    "WebFormDetail.formId",
    "Identifier.network",
    "ProtectedIdentifier.network",
    "ProtectedIdentifier.reason",
    "AgentActionDetail.caseId",
    "AgentActionDetail.customerId",
    "MergeRecord.rule",
    "MergeRecord.status",
    "MergeSuggestion.status",
    "MergeSuggestion.signals",
    "LinkedIdentifier.customerId",
)

FIELD_CLASSES: Mapping[str, Personal] = {
    "Customer.displayName": Personal.NAME,
    "Actor.displayName": Personal.NAME,
    "Identifier.value": Personal.IDENTIFIER,
    "ProtectedIdentifier.value": Personal.IDENTIFIER,
    "FormField.value": Personal.IDENTIFIER,
    "CallDetail.fromNumber": Personal.PHONE,
    "CallDetail.toNumber": Personal.PHONE,
    "SmsDetail.fromNumber": Personal.PHONE,
    "SmsDetail.toNumber": Personal.PHONE,
    "EmailDetail.fromAddress": Personal.EMAIL,
    "EmailDetail.toAddresses": Personal.EMAIL,
    "EmailDetail.ccAddresses": Personal.EMAIL,
    **dict.fromkeys(_OPAQUE_FIELDS, Personal.OPAQUE),
}
"""What a personal string field holds; unlisted fields are free text (scanned for everything)."""

# Web form field names that say what the customer typed (lower-cased, substrings).
_FORM_FIELD_CLASSES: tuple[tuple[tuple[str, ...], Personal], ...] = (
    (("mail",), Personal.EMAIL),
    (("phone", "tel", "mobile", "電話"), Personal.PHONE),
    (("address", "street", "postal", "postcode", "zip", "住所", "郵便"), Personal.ADDRESS),
    (("name", "氏名", "名前"), Personal.NAME),
)

Masker = Callable[[frozenset[str], Any, str], str]


def mask_personal_fields(schema: GraphQLSchema) -> None:
    """Wrap every personal string field of ``schema`` so it answers what the caller may see.

    Args:
        schema: The executable schema (Strawberry's ``_schema``), changed in place.
    """
    for type_name, name, field in object_fields(schema):
        if decision(type_name, name) not in _PERSONAL_OPERATIONS:
            continue
        if named_type(field.type) != GraphQLString.name:
            continue
        masker = _masker(FIELD_CLASSES.get(f"{type_name}.{name}", Personal.FREE_TEXT))
        field.resolve = _masked(field.resolve or default_field_resolver, masker)


def _masker(kind: Personal) -> Masker:
    if kind is not Personal.IDENTIFIER:
        return lambda roles, _source, value: view(roles, kind, value)
    return _identifier_like


def _identifier_like(roles: frozenset[str], source: Any, value: str) -> str:
    # An identifier is masked by its kind; a web form field by what its name says it holds.
    kind = getattr(source, "kind", None)
    if kind is not None:
        return view_identifier(roles, getattr(kind, "value", str(kind)), value)
    form_field = str(getattr(source, "name", "")).lower()
    for needles, personal in _FORM_FIELD_CLASSES:
        if any(needle in form_field for needle in needles):
            return view(roles, personal, value)
    return view(roles, Personal.FREE_TEXT, value)


def _masked(resolve: Callable[..., Any], masker: Masker) -> Callable[..., Any]:
    def masked(source: Any, info: Any, **arguments: Any) -> Any:
        result = resolve(source, info, **arguments)
        roles = info.context.principal.roles
        if isawaitable(result):
            return _masked_later(result, masker, roles, source)
        return _apply(masker, roles, source, result)

    return masked


async def _masked_later(
    result: Awaitable[Any], masker: Masker, roles: frozenset[str], source: Any
) -> Any:
    return _apply(masker, roles, source, await result)


def _apply(masker: Masker, roles: frozenset[str], source: Any, value: Any) -> Any:
    if isinstance(value, str):
        return masker(roles, source, value)
    if isinstance(value, list):
        return [masker(roles, source, item) if isinstance(item, str) else item for item in value]
    return value
