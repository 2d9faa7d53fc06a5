"""What logs and dead letters may say about a failure: a store error's class and code only."""

from __future__ import annotations

from pymongo.errors import BulkWriteError, PyMongoError


def is_store_error(exc: BaseException) -> bool:
    """Whether `exc` comes from the driver (its message and traceback may quote documents)."""
    return isinstance(exc, PyMongoError)


def error_text(exc: BaseException) -> str:
    """What a log line or dead letter may say about a failure.

    A store error's message ends in the driver's "full error", which quotes the document it
    refused (names, phone numbers, texts): only its class and server error code are kept.
    The timeline's own errors name customer ids, never personal data, and are kept whole.
    """
    if not is_store_error(exc):
        return f"{type(exc).__name__}: {exc}"
    code = getattr(exc, "code", None)
    if isinstance(exc, BulkWriteError):
        # The bulk error's own code (65) says nothing; the first write error's says why.
        write_errors = exc.details.get("writeErrors") or [{}]
        code = write_errors[0].get("code", code)
    return type(exc).__name__ if code is None else f"{type(exc).__name__} code {code}"
