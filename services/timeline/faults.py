"""What a failure to record an event means: a dependency down, the event itself, or neither."""

from __future__ import annotations

from enum import StrEnum

import nats.errors
import nats.js.errors
from bson.errors import BSONError, InvalidDocument
from nats.aio.client import Client
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DocumentTooLarge,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WriteError,
    WTimeoutError,
)

from services.timeline.errors import PermanentError
from services.timeline.store.documents import Document
from tsunagu.contracts import ContractViolation, Reason


class Fault(StrEnum):
    """How the consumer treats a failure."""

    # A dependency (store, NATS) is unavailable: hold the message, pause, probe, resume. No
    # delivery attempt is spent and nothing is dead-lettered: the event itself is fine.
    TRANSIENT = "transient"
    # The event can never be recorded as it is: dead-letter it now, with a reason code.
    PERMANENT = "permanent"
    # Anything else (a race lost too often, a bug): redeliver with back-off, and dead-letter
    # it as `deliveries_exhausted` once every delivery failed the same way.
    RETRY = "retry"


# Server error codes of a store that is failing over, shutting down or out of time.
_UNAVAILABLE_CODES = frozenset(
    {6, 7, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}
)
# Server error codes refusing the document itself (bad value, failed validation, too large).
_DOCUMENT_CODES = frozenset({2, 14, 52, 55, 121, 10334, 17280, 17419})
# NATS is (re)connecting or the JetStream API does not answer yet (it also says 503 when
# the dead-letter stream is full: waiting for an operator beats dropping the event).
_NATS_TRANSIENT = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.NoRespondersError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
)


def _store_code(exc: PyMongoError) -> int | None:
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors") or [{}]
        code = errors[0].get("code")
        return code if isinstance(code, int) else None
    if isinstance(exc, OperationFailure):
        return exc.code
    return None


def _store_fault(exc: PyMongoError) -> Fault:
    if exc.has_error_label("RetryableWriteError") or exc.has_error_label(
        "TransientTransactionError"
    ):
        return Fault.TRANSIENT
    code = _store_code(exc)
    if code in _UNAVAILABLE_CODES:
        return Fault.TRANSIENT
    if isinstance(exc, WriteError | BulkWriteError) and code in _DOCUMENT_CODES:
        return Fault.PERMANENT
    return Fault.RETRY


def classify(exc: BaseException) -> Fault:
    """The fault class of `exc`, raised while recording an event or settling its message."""
    permanent = (PermanentError, ContractViolation, DocumentTooLarge, InvalidDocument, BSONError)
    # OSError covers refused and reset connections; TimeoutError covers asyncio's and nats'.
    transient = (ConnectionFailure, ExecutionTimeout, WTimeoutError, OSError, TimeoutError)
    if isinstance(exc, permanent):
        fault = Fault.PERMANENT
    elif isinstance(exc, transient + _NATS_TRANSIENT):
        fault = Fault.TRANSIENT
    elif isinstance(exc, PyMongoError):
        fault = _store_fault(exc)
    else:
        fault = Fault.RETRY
    return fault


def is_transient(exc: BaseException) -> bool:
    return classify(exc) is Fault.TRANSIENT


def reason_of(exc: BaseException) -> Reason:
    """The dead-letter reason code of a permanent failure."""
    if isinstance(exc, ContractViolation):
        return exc.code
    if isinstance(exc, PermanentError):
        return Reason.REFUSED
    return Reason.STORE_REJECTED


class DependencyProbe:
    """Answers while the store and NATS are reachable; raises a transient error otherwise."""

    def __init__(self, db: AsyncDatabase[Document], bus: Client) -> None:
        self._db = db
        self._bus = bus

    async def __call__(self) -> None:
        if not self._bus.is_connected:
            raise nats.errors.ConnectionReconnectingError
        await self._db.command("ping")
