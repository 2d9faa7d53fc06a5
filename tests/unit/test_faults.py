"""Which failures hold the consumer (transient), which dead-letter at once (permanent)."""

from __future__ import annotations

import nats.errors
import nats.js.errors
import pytest
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DocumentTooLarge,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteError,
)

from services.timeline.errors import ConcurrentUpdateError, PermanentError
from services.timeline.faults import Fault, classify, reason_of
from tsunagu.contracts import ContractViolation, Reason


@pytest.mark.parametrize(
    "error",
    [
        ServerSelectionTimeoutError("127.0.0.1:27017: [Errno 111] Connection refused"),
        AutoReconnect("connection closed"),
        NetworkTimeout("timed out"),
        NotPrimaryError("not primary"),
        OperationFailure("shutting down", code=91),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        nats.errors.TimeoutError(),
        nats.errors.ConnectionReconnectingError(),
        nats.errors.ConnectionClosedError(),
        nats.js.errors.ServiceUnavailableError(code=503, description="JetStream not ready"),
    ],
)
def test_an_unavailable_dependency_is_transient(error: Exception) -> None:
    assert classify(error) is Fault.TRANSIENT


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PermanentError("agent action for unknown customer cus_1"), Reason.REFUSED),
        (
            ContractViolation("event_id", "empty", code=Reason.EVENT_ID_INVALID),
            Reason.EVENT_ID_INVALID,
        ),
        (DocumentTooLarge("BSON document too large"), Reason.STORE_REJECTED),
        (WriteError("Document failed validation", code=121), Reason.STORE_REJECTED),
        (
            BulkWriteError({"writeErrors": [{"code": 2, "errmsg": "bad value"}]}),
            Reason.STORE_REJECTED,
        ),
    ],
)
def test_an_event_that_can_never_be_recorded_is_permanent_with_its_reason(
    error: Exception, reason: Reason
) -> None:
    assert classify(error) is Fault.PERMANENT
    assert reason_of(error) is reason


@pytest.mark.parametrize(
    "error",
    [
        ConcurrentUpdateError("customer kept changing"),
        DuplicateKeyError("E11000 duplicate key"),
        OperationFailure("unknown", code=8000),
        RuntimeError("a bug"),
    ],
)
def test_anything_else_is_retried_on_redelivery(error: Exception) -> None:
    assert classify(error) is Fault.RETRY
