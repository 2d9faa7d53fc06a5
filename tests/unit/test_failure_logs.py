"""Failures are logged by class and frames, never by their messages (finding 9 of issue 9).

An exception's text can quote personal data: a driver error its document, a validation error
the value, a gRPC status the server's details. Each test makes a failure whose message holds
a phone number and an e-mail address and looks for them in what is logged and answered.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator

import grpc
import pytest

from tests.grpc_credentials import caller_set, channel_for
from tsunagu.grpc_auth import admit_kind
from tsunagu.logs import TextFormatter
from tsunagu.rpc import GrpcServer
from tsunagu.rpc_failures import UNEXPECTED_DETAILS
from tsunagu.tracebacks import frames_only

PHONE = "+81 90 1234 5678"
EMAIL = "hanako.yamada@example.jp"
# What a driver's "full error" looks like: the document it refused.
DOCUMENT = f"E11000 duplicate key, full error: {{'phone': '{PHONE}', 'email': '{EMAIL}'}}"


class StoreRefused(RuntimeError):
    """Stands in for a driver error that quotes its document."""


def _fail_with_a_cause() -> None:
    try:
        raise StoreRefused(DOCUMENT)
    except StoreRefused as cause:
        raise ValueError(f"could not save {EMAIL}") from cause


def _raised() -> BaseException:
    try:
        _fail_with_a_cause()
    except ValueError as exc:
        return exc
    raise AssertionError("did not raise")


def _assert_no_personal_data(text: str) -> None:
    assert PHONE not in text
    assert EMAIL not in text


def test_frames_only_keeps_the_exception_chain_and_frames_but_no_message() -> None:
    text = frames_only(_raised())

    _assert_no_personal_data(text)
    assert text.index("StoreRefused") < text.index("ValueError")  # cause first, as Python
    assert "_fail_with_a_cause" in text  # where it happened
    assert text.endswith("ValueError")


def test_every_process_logs_tracebacks_without_messages() -> None:
    # The formatter tsunagu.runtime.configure_logging installs on every process's handlers.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter())
    logger = logging.getLogger("tests.failure_logs")
    logger.addHandler(handler)
    try:
        try:
            _fail_with_a_cause()
        except ValueError:
            logger.exception("saving failed")
    finally:
        logger.removeHandler(handler)

    logged = stream.getvalue()
    _assert_no_personal_data(logged)
    assert "saving failed" in logged
    assert "tests.unit.test_failure_logs.StoreRefused" in logged


async def _fail(_request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    _fail_with_a_cause()
    return b""


CALLERS = caller_set(["acme"])


@pytest.fixture
async def failing_server() -> AsyncIterator[GrpcServer]:
    handler = grpc.method_handlers_generic_handler(
        "tests.Failing",
        {
            "Fail": grpc.unary_unary_rpc_method_handler(
                _fail, request_deserializer=bytes, response_serializer=bytes
            )
        },
    )
    async with GrpcServer(
        host="127.0.0.1",
        port=0,
        register=lambda _server: None,
        service_names=["tests.Failing"],
        handlers=[handler],
        security=CALLERS.security(admit_kind("service")),
    ) as server:
        yield server


async def test_a_servicer_failure_reaches_neither_the_log_nor_the_caller(
    failing_server: GrpcServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with channel_for(failing_server.address, CALLERS.service) as channel:
        call = channel.unary_unary(
            "/tests.Failing/Fail", request_serializer=bytes, response_deserializer=bytes
        )
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call(b"", timeout=10)

    assert failed.value.code() == grpc.StatusCode.UNKNOWN
    assert failed.value.details() == UNEXPECTED_DETAILS
    # caplog renders tracebacks in full: what grpc would have logged by itself shows here.
    _assert_no_personal_data(caplog.text)
    assert "/tests.Failing/Fail failed: ValueError" in caplog.text
    assert "StoreRefused" in caplog.text
