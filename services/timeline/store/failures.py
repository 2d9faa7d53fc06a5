"""How the store failed: unavailable (wait for it), refusing the document (never retry), other."""

from __future__ import annotations

from enum import StrEnum

from bson.errors import BSONError, InvalidDocument
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


class StoreFailure(StrEnum):
    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"
    OTHER = "other"


# Server error codes of a store that is failing over, shutting down or out of time.
_UNAVAILABLE_CODES = frozenset(
    {6, 7, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}
)
# Server error codes refusing the document itself (bad value, failed validation, too large).
_DOCUMENT_CODES = frozenset({2, 14, 52, 55, 121, 10334, 17280, 17419})


def _code(exc: PyMongoError) -> int | None:
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors") or [{}]
        code = errors[0].get("code")
        return code if isinstance(code, int) else None
    if isinstance(exc, OperationFailure):
        return exc.code
    return None


def store_failure(exc: BaseException) -> StoreFailure | None:
    """What kind of store failure `exc` is; None when it is not one."""
    if isinstance(exc, DocumentTooLarge | InvalidDocument | BSONError):
        return StoreFailure.REJECTED
    if not isinstance(exc, PyMongoError):
        return None
    unavailable = isinstance(exc, ConnectionFailure | ExecutionTimeout | WTimeoutError) or (
        exc.has_error_label("RetryableWriteError")
        or exc.has_error_label("TransientTransactionError")
    )
    code = _code(exc)
    if unavailable or code in _UNAVAILABLE_CODES:
        return StoreFailure.UNAVAILABLE
    if isinstance(exc, WriteError | BulkWriteError) and code in _DOCUMENT_CODES:
        return StoreFailure.REJECTED
    return StoreFailure.OTHER
