"""Thin async client of the timeline's gRPC query API, translating gRPC failures for GraphQL."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.errors import ErrorCode, GatewayError
from tsunagu.grpc_channels import open_channel
from tsunagu.lifecycle import Lifecycle
from tsunagu.rpc import MAX_RESPONSE_BYTES
from tsunagu.v1 import (
    erasure_pb2,
    erasure_pb2_grpc,
    interaction_pb2,
    privacy_pb2,
    privacy_pb2_grpc,
    timeline_pb2,
    timeline_pb2_grpc,
)

if TYPE_CHECKING:
    from tsunagu.v1.erasure_pb2_grpc import ErasureServiceAsyncStub
    from tsunagu.v1.privacy_pb2_grpc import PrivacyServiceAsyncStub
    from tsunagu.v1.timeline_pb2_grpc import TimelineServiceAsyncStub

_log = logging.getLogger(__name__)

_Request = TypeVar("_Request", bound=Message)
_Response = TypeVar("_Response", bound=Message)

# Failures the agent can do nothing about but retry later: one code, one message.
_UNAVAILABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# The timeline refused what the client asked for (an unparseable phone number, a stale cursor).
_BAD_INPUT_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE})
# The name the timeline's gRPC health service reports its readiness under.
TIMELINE_SERVICE_NAME = timeline_pb2.DESCRIPTOR.services_by_name["TimelineService"].full_name
# Bounds LookupEvents and GetCases calls to what the timeline accepts in one request.
MAX_IDS_PER_CALL = 500


class TimelineCallFailed(RuntimeError):
    """The timeline failed in a way the client cannot fix; reported as an internal error."""


class _Keyed(Protocol):
    @property
    def id(self) -> str: ...


_Found = TypeVar("_Found", bound=_Keyed)


def _one_per_id(
    method: str, ids: Sequence[str], found: Sequence[_Found] | None
) -> list[_Found | None]:
    """A by-id batch answer in request order: ``None`` where the timeline has no such id.

    The timeline answers one (possibly empty) message per id, so the count must match.

    Raises:
        TimelineCallFailed: The timeline answered with the wrong number of items.
    """
    if found is None:
        return [None] * len(ids)
    if len(found) != len(ids):
        raise TimelineCallFailed(f"{method} returned {len(found)} items for {len(ids)} ids")
    return [item if item.id else None for item in found]


def timeline_unavailable() -> GatewayError:
    """Build the error for a timeline that cannot answer right now.

    Returns:
        A ``GatewayError`` with code ``TIMELINE_UNAVAILABLE``.
    """
    return GatewayError(
        ErrorCode.TIMELINE_UNAVAILABLE,
        "The timeline service is unavailable; try again shortly.",
    )


class TimelineClient(Lifecycle):
    """Client of ``tsunagu.v1.TimelineService``; an async context manager owning its channel.

    The channel is opened by ``open()`` (or ``async with``) inside the running event loop,
    which is why the gateway's ASGI lifespan does it rather than the constructor.
    """

    def __init__(
        self,
        *,
        address: str,
        timeout_seconds: float,
        token: str = "",
        tls: grpc.ChannelCredentials | None = None,
    ) -> None:
        self._address = address
        self._timeout = timeout_seconds
        # The gateway's service identity: the timeline serves service identities only.
        self._token = token
        self._tls = tls
        self._channel: grpc.aio.Channel | None = None
        self._stub: TimelineServiceAsyncStub | None = None
        # The read audit, served by the timeline next to its reads (docs/privacy.md).
        self._privacy: PrivacyServiceAsyncStub | None = None
        self._erasure: ErasureServiceAsyncStub | None = None

    @property
    def address(self) -> str:
        """The ``host:port`` of the timeline service."""
        return self._address

    async def open(self) -> None:
        """Create the gRPC channel; connecting happens lazily on the first call or probe."""
        if self._channel is not None:
            raise RuntimeError("the timeline client is already open")
        # The timeline sends at most MAX_RESPONSE_BYTES (its pages stop early by bytes), and
        # the client accepts exactly that much: gRPC's 4 MiB default would fail full pages.
        self._channel = open_channel(
            self._address,
            token=self._token or None,
            tls=self._tls,
            options=[("grpc.max_receive_message_length", MAX_RESPONSE_BYTES)],
        )
        self._stub = timeline_pb2_grpc.TimelineServiceStub(self._channel)
        self._privacy = privacy_pb2_grpc.PrivacyServiceStub(self._channel)
        # The timeline serves erasure on the same port (gateway.erasure).
        self._erasure = erasure_pb2_grpc.ErasureServiceStub(self._channel)

    async def close(self, grace: float | None = None) -> None:
        """Close the channel.

        Args:
            grace: Seconds to let in-flight calls finish; ``None`` cancels them at once.
        """
        channel, self._channel, self._stub, self._privacy = self._channel, None, None, None
        self._erasure = None
        if channel is not None:
            await channel.close(grace)

    def connectivity(self) -> str:
        """Name the channel's state (``READY``, ``IDLE``, ``TRANSIENT_FAILURE``, ...).

        Asking also nudges an idle channel to connect, so a health probe warms it up.

        Returns:
            The ``grpc.ChannelConnectivity`` name, or ``CLOSED`` when the client is not open.
        """
        if self._channel is None:
            return "CLOSED"
        return self._channel.get_state(try_to_connect=True).name

    async def readiness(self, *, timeout_seconds: float) -> str:
        """Ask the timeline's gRPC health service whether it can serve queries now.

        The timeline's own service name is its readiness (the overall status is only its
        liveness: tsunagu.rpc.GrpcServer.set_ready).

        Args:
            timeout_seconds: The most the answer may take.

        Returns:
            ``SERVING`` or ``NOT_SERVING``; the gRPC status name (``UNAVAILABLE``,
            ``DEADLINE_EXCEEDED``, ...) when the check failed; ``CLOSED`` when not open.
        """
        if self._channel is None:
            return "CLOSED"
        request = health_pb2.HealthCheckRequest(service=TIMELINE_SERVICE_NAME)
        try:
            answer: health_pb2.HealthCheckResponse = await health_pb2_grpc.HealthStub(
                self._channel
            ).Check(request, timeout=timeout_seconds)
        except grpc.aio.AioRpcError as error:
            code: grpc.StatusCode = error.code()
            return code.name
        status: str = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
        return status

    async def resolve_identifier(
        self, tenant: str, identifier: interaction_pb2.Identifier
    ) -> timeline_pb2.Customer | None:
        """Screen-pop: find the customer an identifier belongs to.

        Args:
            tenant: The caller's tenant.
            identifier: The identifier as the agent typed it; the timeline normalises it.

        Returns:
            The customer, or ``None`` when nobody has that identifier.
        """
        stub = self._require_stub()
        request = timeline_pb2.ResolveIdentifierRequest(tenant=tenant, identifier=identifier)
        response = await self._call("ResolveIdentifier", stub.ResolveIdentifier, request)
        if response is None or not response.customer.id:
            return None
        return response.customer

    async def get_customers(
        self, tenant: str, ids: Sequence[str]
    ) -> list[timeline_pb2.Customer | None]:
        """Fetch customers by id in one round trip.

        Args:
            tenant: The caller's tenant.
            ids: Customer ids; a merged-away id yields the surviving customer.

        Returns:
            One entry per id, in order; ``None`` where no such customer exists.

        Raises:
            TimelineCallFailed: The timeline answered with the wrong number of customers.
        """
        stub = self._require_stub()
        request = timeline_pb2.GetCustomersRequest(tenant=tenant, customer_ids=list(ids))
        response = await self._call("GetCustomers", stub.GetCustomers, request)
        return _one_per_id("GetCustomers", ids, None if response is None else response.customers)

    async def list_interactions(
        self,
        tenant: str,
        customer_id: str,
        *,
        page_size: int,
        after: str | None = None,
        channels: Sequence[interaction_pb2.Channel.ValueType] = (),
        kinds: Sequence[interaction_pb2.Kind.ValueType] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        case_id: str | None = None,
    ) -> timeline_pb2.ListInteractionsResponse | None:
        """Read one page of a customer's timeline, newest first.

        Args:
            tenant: The caller's tenant.
            customer_id: Whose timeline.
            page_size: Entries per page (the timeline accepts 1..200).
            after: Cursor of the last entry already seen; the page starts just past it.
            channels: Only these channels; empty means all.
            kinds: Only these kinds; empty means all.
            since: Only entries that occurred at or after this instant.
            until: Only entries that occurred before this instant.
            case_id: Only the entries of this case.

        Returns:
            The page, or ``None`` when the timeline does not know the customer.
        """
        stub = self._require_stub()
        request = timeline_pb2.ListInteractionsRequest(
            tenant=tenant,
            customer_id=customer_id,
            page_size=page_size,
            after=after or "",
            channels=channels,
            kinds=kinds,
            case_id=case_id or "",
        )
        if since is not None:
            request.since.CopyFrom(_timestamp(since))
        if until is not None:
            request.until.CopyFrom(_timestamp(until))
        return await self._call("ListInteractions", stub.ListInteractions, request)

    async def get_interactions(
        self, tenant: str, event_ids: Sequence[str]
    ) -> list[timeline_pb2.TimelineEntry]:
        """Stored interactions by event id, as timeline entries (in request order).

        Args:
            tenant: The caller's tenant.
            event_ids: At most ``MAX_IDS_PER_CALL`` event ids.

        Returns:
            The entries of the stored events; unknown ids are left out.
        """
        stub = self._require_stub()
        request = timeline_pb2.GetInteractionsRequest(tenant=tenant, event_ids=list(event_ids))
        response = await self._call("GetInteractions", stub.GetInteractions, request)
        return [] if response is None else list(response.entries)

    async def lookup_events(self, tenant: str, event_ids: Sequence[str]) -> dict[str, str]:
        """Which of these events are stored, and on which (surviving) customer.

        Args:
            tenant: The caller's tenant.
            event_ids: At most ``MAX_IDS_PER_CALL`` event ids.

        Returns:
            Event id → customer id, for the stored events only.
        """
        stub = self._require_stub()
        request = timeline_pb2.LookupEventsRequest(tenant=tenant, event_ids=list(event_ids))
        response = await self._call("LookupEvents", stub.LookupEvents, request)
        if response is None:
            return {}
        return {found.event_id: found.customer_id for found in response.found}

    async def search_customers(
        self, tenant: str, query: str, *, limit: int
    ) -> list[timeline_pb2.Customer]:
        """Customers whose name or an identifier starts with ``query``.

        Args:
            tenant: The caller's tenant.
            query: A name or identifier prefix, at least two characters.
            limit: At most this many customers (the timeline accepts 1..50).

        Returns:
            The matching customers, best first.
        """
        stub = self._require_stub()
        request = timeline_pb2.SearchCustomersRequest(tenant=tenant, query=query, limit=limit)
        response = await self._call("SearchCustomers", stub.SearchCustomers, request)
        return [] if response is None else list(response.customers)

    async def get_cases(self, tenant: str, ids: Sequence[str]) -> list[timeline_pb2.Case | None]:
        """Fetch cases by id in one round trip.

        Args:
            tenant: The caller's tenant.
            ids: Case ids.

        Returns:
            One entry per id, in order; ``None`` where no such case exists.

        Raises:
            TimelineCallFailed: The timeline answered with the wrong number of cases.
        """
        stub = self._require_stub()
        request = timeline_pb2.GetCasesRequest(tenant=tenant, case_ids=list(ids))
        response = await self._call("GetCases", stub.GetCases, request)
        return _one_per_id("GetCases", ids, None if response is None else response.cases)

    async def list_cases(
        self,
        tenant: str,
        case_filter: timeline_pb2.CaseFilter,
        *,
        page_size: int,
        after: str | None = None,
    ) -> timeline_pb2.ListCasesResponse:
        """Read one page of cases matching a filter, most recently updated first.

        Args:
            tenant: The caller's tenant.
            case_filter: Which cases.
            page_size: Cases per page (the timeline accepts 1..200).
            after: ``next_cursor`` of the previous page.

        Returns:
            The page (empty when nothing matches).
        """
        stub = self._require_stub()
        request = timeline_pb2.ListCasesRequest(
            tenant=tenant, filter=case_filter, page_size=page_size, after=after or ""
        )
        response = await self._call("ListCases", stub.ListCases, request)
        return response or timeline_pb2.ListCasesResponse()

    async def get_merge_history(
        self, tenant: str, customer_id: str
    ) -> list[timeline_pb2.MergeRecord]:
        """The merge ledger entries a customer took part in, oldest first.

        Args:
            tenant: The caller's tenant.
            customer_id: The customer (survivor or merged).

        Returns:
            The entries; empty when the customer is unknown or was never merged.
        """
        stub = self._require_stub()
        request = timeline_pb2.GetMergeHistoryRequest(tenant=tenant, customer_id=customer_id)
        response = await self._call("GetMergeHistory", stub.GetMergeHistory, request)
        return [] if response is None else list(response.merges)

    async def list_merge_suggestions(
        self, tenant: str, *, customer_id: str | None, limit: int
    ) -> list[timeline_pb2.MergeSuggestion]:
        """Open merge suggestions for one customer, or for the whole tenant.

        Args:
            tenant: The caller's tenant.
            customer_id: The customer; ``None`` for every open suggestion of the tenant.
            limit: At most this many (the timeline accepts 1..200).

        Returns:
            The suggestions.
        """
        stub = self._require_stub()
        request = timeline_pb2.ListMergeSuggestionsRequest(
            tenant=tenant, customer_id=customer_id or "", limit=limit
        )
        response = await self._call("ListMergeSuggestions", stub.ListMergeSuggestions, request)
        return [] if response is None else list(response.suggestions)

    async def record_access(self, tenant: str, accesses: Sequence[privacy_pb2.Access]) -> list[int]:
        """Record accesses on the tenant's audit chain; returns once they are stored.

        Raises:
            GatewayError: ``TIMELINE_UNAVAILABLE`` (or another code) when nothing was recorded.
        """
        request = privacy_pb2.RecordAccessRequest(tenant=tenant, accesses=accesses)
        stub = self._require_privacy()
        response = await self._call("RecordAccess", stub.RecordAccess, request)
        if response is None or len(response.sequences) != len(accesses):
            raise TimelineCallFailed("RecordAccess did not record every access")
        return list(response.sequences)

    async def list_audit(
        self, tenant: str, *, customer_id: str, page_size: int, cursor: str
    ) -> privacy_pb2.ListAuditResponse:
        """One page of the audit of a customer (or of the tenant when ``customer_id`` is empty)."""
        request = privacy_pb2.ListAuditRequest(
            tenant=tenant, customer_id=customer_id, page_size=page_size, cursor=cursor
        )
        stub = self._require_privacy()
        response = await self._call("ListAudit", stub.ListAudit, request)
        return response if response is not None else privacy_pb2.ListAuditResponse()

    async def verify_audit_chain(self, tenant: str) -> privacy_pb2.VerifyAuditChainResponse:
        """Have the timeline recompute the tenant's audit chain."""
        stub = self._require_privacy()
        request = privacy_pb2.VerifyAuditChainRequest(tenant=tenant)
        response = await self._call("VerifyAuditChain", stub.VerifyAuditChain, request)
        if response is None:
            raise TimelineCallFailed("VerifyAuditChain answered NOT_FOUND")
        return response

    def _require_privacy(self) -> PrivacyServiceAsyncStub:
        if self._privacy is None:
            raise timeline_unavailable()
        return self._privacy

    async def erase_customer(
        self, request: erasure_pb2.EraseCustomerRequest
    ) -> erasure_pb2.ErasureCertificate | None:
        """Erase a customer's person; None when there is nothing (left) to erase."""
        if self._erasure is None:
            raise timeline_unavailable()
        response = await self._call("EraseCustomer", self._erasure.EraseCustomer, request)
        return None if response is None else response.certificate

    async def erasure_status(
        self, tenant: str, customer_id: str
    ) -> erasure_pb2.GetErasureStatusResponse | None:
        """The erasure certificates naming a customer and whether it was flagged."""
        if self._erasure is None:
            raise timeline_unavailable()
        request = erasure_pb2.GetErasureStatusRequest(tenant=tenant, customer_id=customer_id)
        return await self._call("GetErasureStatus", self._erasure.GetErasureStatus, request)

    def _require_stub(self) -> TimelineServiceAsyncStub:
        if self._stub is None:
            # Only during start-up or shutdown; the agent can simply retry.
            raise timeline_unavailable()
        return self._stub

    async def _call(
        self,
        method: str,
        rpc: grpc.aio.UnaryUnaryMultiCallable[_Request, _Response],
        request: _Request,
    ) -> _Response | None:
        try:
            return await rpc(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code == grpc.StatusCode.NOT_FOUND:
                return None
            if code in _UNAVAILABLE_CODES:
                _log.warning("timeline %s failed: %s", method, code.name)
                raise timeline_unavailable() from error
            if code in _BAD_INPUT_CODES:
                raise GatewayError(
                    ErrorCode.BAD_USER_INPUT, error.details() or code.name
                ) from error
            if code == grpc.StatusCode.PERMISSION_DENIED:
                raise GatewayError(ErrorCode.FORBIDDEN, "Not allowed.") from error
            if code == grpc.StatusCode.UNIMPLEMENTED:
                # A timeline older than this gateway (during a rolling upgrade, say): the
                # field is unavailable, everything else keeps working.
                raise GatewayError(
                    ErrorCode.NOT_SUPPORTED,
                    f"The timeline service does not support {method} yet.",
                ) from error
            # The details may quote personal data, so only the status goes into the message.
            raise TimelineCallFailed(f"timeline {method} failed with {code.name}") from error


def _timestamp(value: datetime) -> Timestamp:
    # GraphQL clients may omit the offset; such instants are read as UTC, as documented.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    timestamp = Timestamp()
    timestamp.FromDatetime(value)
    return timestamp
