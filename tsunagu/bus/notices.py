"""The one codec of `timeline.updated` notices, shared by the timeline and the gateway."""

from __future__ import annotations

import logging
import re

from google.protobuf.message import DecodeError

from tsunagu.bus.subjects import TIMELINE_UPDATED_PREFIX
from tsunagu.v1 import notices_pb2

log = logging.getLogger(__name__)

# Core NATS carries the notice to every gateway replica: keep it well under the server's
# max_payload (1 MiB by default). A notice whose entry would pass this goes without the entry
# and subscribers read the entry back by event id.
MAX_NOTICE_BYTES = 64 * 1024

# Ids that go into a subject must be one NATS token: no dots, wildcards or whitespace.
_SUBJECT_TOKEN = re.compile(r"[A-Za-z0-9_:-]{1,128}")


def is_subject_token(value: str) -> bool:
    """Whether `value` can be one token of a NATS subject without changing the subject."""
    return _SUBJECT_TOKEN.fullmatch(value) is not None


def customer_subject(tenant: str, customer_id: str) -> str:
    """`timeline.updated.<tenant>.<customer>`, refusing ids that would widen the subject.

    Raises:
        ValueError: `tenant` or `customer_id` is not a single subject token.
    """
    if not (is_subject_token(tenant) and is_subject_token(customer_id)):
        raise ValueError("tenant and customer id must be single NATS subject tokens")
    return f"{TIMELINE_UPDATED_PREFIX}.{tenant}.{customer_id}"


def tenant_subject(tenant: str) -> str:
    """`timeline.updated.<tenant>.>`: every notice of one tenant.

    Raises:
        ValueError: `tenant` is not a single subject token.
    """
    if not is_subject_token(tenant):
        raise ValueError("tenant must be a single NATS subject token")
    return f"{TIMELINE_UPDATED_PREFIX}.{tenant}.>"


def encode_notice(notice: notices_pb2.TimelineUpdated) -> bytes:
    """Serialise a notice, leaving its entry out when the whole would pass the size limit."""
    data = notice.SerializeToString()
    if len(data) <= MAX_NOTICE_BYTES or not notice.HasField("entry"):
        return data
    slim = notices_pb2.TimelineUpdated()
    slim.CopyFrom(notice)
    slim.ClearField("entry")
    return slim.SerializeToString()


def decode_notice(data: bytes) -> notices_pb2.TimelineUpdated | None:
    """Read a notice; None (and a warning) for a payload that is not a usable one."""
    if len(data) > MAX_NOTICE_BYTES:
        log.warning("ignoring timeline notice of %d bytes (limit %d)", len(data), MAX_NOTICE_BYTES)
        return None
    try:
        notice = notices_pb2.TimelineUpdated.FromString(data)
    except DecodeError as error:
        log.warning("ignoring malformed timeline notice: %s", error)
        return None
    if not (
        is_subject_token(notice.tenant) and is_subject_token(notice.customer_id) and notice.event_id
    ):
        log.warning("ignoring timeline notice without tenant, customer or event id")
        return None
    return notice
