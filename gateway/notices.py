"""The ``timeline.updated.<tenant>.<customer>`` notices the timeline publishes after a commit."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from tsunagu.bus.notices import decode_notice
from tsunagu.bus.subjects import CHANNEL_TOKENS, TIMELINE_UPDATED_PREFIX
from tsunagu.v1 import interaction_pb2, notices_pb2, timeline_pb2

_log = logging.getLogger(__name__)

# Ids that go into a subject must be one NATS token: no dots, wildcards or whitespace.
# Timeline customer ids (``cus_<hex>``) and tenants always are; anything else never reaches NATS.
_SUBJECT_TOKEN = re.compile(r"[A-Za-z0-9_:-]{1,128}")


def is_subject_token(value: str) -> bool:
    """Whether ``value`` can be used as one token of a NATS subject without changing it."""
    return _SUBJECT_TOKEN.fullmatch(value) is not None


def customer_subject(tenant: str, customer_id: str) -> str:
    """``timeline.updated.<tenant>.<customer>``, refusing ids that would widen the subject.

    Raises:
        ValueError: ``tenant`` or ``customer_id`` is not a single subject token.
    """
    if not (is_subject_token(tenant) and is_subject_token(customer_id)):
        raise ValueError("tenant and customer id must be single NATS subject tokens")
    return f"{TIMELINE_UPDATED_PREFIX}.{tenant}.{customer_id}"


def tenant_subject(tenant: str) -> str:
    """``timeline.updated.<tenant>.>``: every notice of one tenant.

    Raises:
        ValueError: ``tenant`` is not a single subject token.
    """
    if not is_subject_token(tenant):
        raise ValueError("tenant must be a single NATS subject token")
    return f"{TIMELINE_UPDATED_PREFIX}.{tenant}.>"


@dataclass(frozen=True, slots=True)
class TimelineNotice:
    """One committed event, as announced by the timeline.

    Attributes:
        tenant: The tenant.
        customer_id: The customer the event is stored on.
        event_id: The event.
        channel: Channel token (``"chat"``, ``"agent_desk"``, ...).
        kind: Kind token (``"message"``, ``"handoff"``, ...).
        occurred_at: When the event happened, if the notice says.
        merged_ids: Customers this event merged into ``customer_id``.
        merged_into: Set on the copy sent to a merged-away customer's subject: the survivor.
        case_id: The case the event was attached to, when the timeline says.
        case_status: The case's status token after the event, when the timeline says.
    """

    tenant: str
    customer_id: str
    event_id: str
    channel: str
    kind: str
    occurred_at: datetime | None
    merged_ids: tuple[str, ...]
    merged_into: str | None
    case_id: str | None
    case_status: str | None

    @classmethod
    def parse(cls, data: bytes) -> TimelineNotice | None:
        """Read a notice; ``None`` (and a warning) for a payload that is not one."""
        if not data.startswith(b"{"):
            # The timeline now publishes the `tsunagu.v1.TimelineUpdated` contract; the JSON
            # form below stays readable until the gateway reads the contract everywhere.
            return cls._from_contract(decode_notice(data))
        try:
            body = json.loads(data)
            if not isinstance(body, dict):
                raise TypeError("not an object")
            return cls(
                tenant=_text(body, "tenant"),
                customer_id=_text(body, "customer_id"),
                event_id=_text(body, "event_id"),
                channel=str(body.get("channel") or ""),
                kind=str(body.get("kind") or ""),
                occurred_at=_instant(body.get("occurred_at")),
                merged_ids=tuple(str(merged) for merged in body.get("merged_ids") or ()),
                merged_into=_optional(body.get("merged_into")),
                case_id=_optional(body.get("case_id")),
                case_status=_optional(body.get("case_status")),
            )
        except (ValueError, TypeError, KeyError) as error:
            _log.warning("ignoring malformed timeline notice: %s", error)
            return None

    @classmethod
    def _from_contract(cls, notice: notices_pb2.TimelineUpdated | None) -> TimelineNotice | None:
        if notice is None:
            return None
        status = notice.case_status
        return cls(
            tenant=notice.tenant,
            customer_id=notice.customer_id,
            event_id=notice.event_id,
            channel=CHANNEL_TOKENS.get(notice.channel, ""),
            kind=interaction_pb2.Kind.Name(notice.kind).removeprefix("KIND_").lower(),
            occurred_at=(
                notice.occurred_at.ToDatetime(tzinfo=UTC)
                if notice.HasField("occurred_at")
                else None
            ),
            merged_ids=tuple(notice.merged_ids),
            merged_into=notice.merged_into or None,
            case_id=notice.case_id or None,
            case_status=(
                timeline_pb2.CaseStatus.Name(status).removeprefix("CASE_STATUS_").lower()
                if status
                else None
            ),
        )


def _text(body: dict[str, object], key: str) -> str:
    value = body[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def _optional(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    timestamp = Timestamp()
    timestamp.FromJsonString(value)
    return timestamp.ToDatetime(tzinfo=UTC)
