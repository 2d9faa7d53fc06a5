"""The read audit, gateway side: a read of a customer is recorded before it is served.

Fields are found, not listed: every field whose value is a ``Customer`` (a profile read) or
an ``Interaction`` or page of them (a timeline read) is wrapped, wherever it sits in the
schema (a case's customer, a live update's entry, a merge suggestion's customers). The
accesses of one operation that resolve together go to the timeline in one ``RecordAccess``
call (a DataLoader batches them per tick); the field answers only once they are stored, and
``AUDIT_UNAVAILABLE`` with no data when they could not be (the audit fails closed).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from inspect import isawaitable
from typing import Any
from weakref import WeakKeyDictionary

from graphql import GraphQLSchema, default_field_resolver
from strawberry.dataloader import DataLoader

from gateway.context import GatewayContext
from gateway.customers import CustomerFields
from gateway.errors import ErrorCode, GatewayError
from gateway.permissions import named_type, object_fields
from gateway.timeline import InteractionFields
from tsunagu.v1 import privacy_pb2

_log = logging.getLogger(__name__)


class AccessKind(StrEnum):
    """What an access did (``Access.operation`` on the chain)."""

    READ_PROFILE = "read_profile"
    READ_TIMELINE = "read_timeline"
    REVEAL = "reveal"
    EXPORT = "export"
    READ_AUDIT = "read_audit"
    ERASE = "erase"


@dataclass(frozen=True, slots=True)
class AccessKey:
    """One access of the caller to one customer's data."""

    customer_id: str
    kind: AccessKind
    fields: tuple[str, ...] = ()
    reason: str = ""


# The GraphQL types whose values are personal data of one customer, and what reading is.
_AUDITED_TYPES = {"Customer", "Interaction", "InteractionConnection"}
# Recorded with their page already (``InteractionConnection``).
_RECORDED_WITH_PARENT = {"InteractionEdge.node"}


def audit_unavailable() -> GatewayError:
    """The error of a read whose access could not be recorded."""
    return GatewayError(
        ErrorCode.AUDIT_UNAVAILABLE,
        "The access could not be recorded in the audit, so nothing is shown; try again shortly.",
    )


class AccessRecorder:
    """Records one context's accesses (a request, or a WebSocket connection) in batches."""

    def __init__(self, context: GatewayContext) -> None:
        self._context = context
        # No cache: every read is an access of its own (a live view reads again and again).
        self._loader: DataLoader[AccessKey, None] = DataLoader(load_fn=self._store, cache=False)

    async def record(self, keys: Iterable[AccessKey]) -> None:
        """Record ``keys``; returns once they are stored on the chain.

        Raises:
            GatewayError: ``AUDIT_UNAVAILABLE``: nothing of what they describe may be served.
        """
        unique = list(dict.fromkeys(keys))
        if unique:
            await self._loader.load_many(unique)

    async def _store(self, keys: Sequence[AccessKey]) -> list[None]:
        context = self._context
        principal = context.principal
        accesses = [
            privacy_pb2.Access(
                subject=principal.subject,
                customer_id=key.customer_id,
                operation=key.kind.value,
                fields=key.fields,
                client_address=context.client_address,
                reason=key.reason,
                roles=sorted(principal.roles),
            )
            for key in keys
        ]
        try:
            await context.timeline.record_access(principal.tenant, accesses)
        except Exception as failure:
            # Logged by type only: the failure's text can quote what it failed on.
            _log.warning("read audit not recorded: %s", type(failure).__name__)
            raise audit_unavailable() from failure
        return [None] * len(keys)


_recorders: WeakKeyDictionary[GatewayContext, AccessRecorder] = WeakKeyDictionary()


def recorder(context: GatewayContext) -> AccessRecorder:
    """The access recorder of ``context`` (made on its first access, gone with it)."""
    found = _recorders.get(context)
    if found is None:
        found = _recorders[context] = AccessRecorder(context)
    return found


def accesses_in(value: Any) -> list[AccessKey]:
    """The accesses serving ``value`` amounts to: profiles and timelines it carries."""
    if value is None:
        return []
    if isinstance(value, list):
        return [key for item in value for key in accesses_in(item)]
    if isinstance(value, CustomerFields):
        return [AccessKey(str(value.id), AccessKind.READ_PROFILE)]
    if isinstance(value, InteractionFields):
        return [AccessKey(str(value.customer_id), AccessKind.READ_TIMELINE)]
    edges = getattr(value, "edges", None)
    if edges is not None:
        return [key for edge in edges for key in accesses_in(edge.node)]
    return []


def audit_reads(schema: GraphQLSchema) -> None:
    """Wrap every field serving a customer's profile or timeline with its access record.

    Args:
        schema: The executable schema (Strawberry's ``_schema``), changed in place.
    """
    for type_name, name, field in object_fields(schema):
        if f"{type_name}.{name}" in _RECORDED_WITH_PARENT:
            continue
        if named_type(field.type) in _AUDITED_TYPES:
            field.resolve = _audited(field.resolve or default_field_resolver)


def _audited(resolve: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    async def audited(source: Any, info: Any, **arguments: Any) -> Any:
        result = resolve(source, info, **arguments)
        if isawaitable(result):
            result = await result
        await recorder(info.context).record(accesses_in(result))
        return result

    return audited
