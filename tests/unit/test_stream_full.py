"""A full stream's refusal is recognised, names its limit, and raises an alarm without flooding."""

from __future__ import annotations

import logging

import pytest
from nats.js.errors import APIError, ServiceUnavailableError

from tsunagu.bus.publisher import StreamFullAlarm, StreamFullError, stream_full


def refusal(description: str) -> APIError:
    return ServiceUnavailableError(code=503, err_code=10077, description=description)


@pytest.mark.parametrize(
    ("description", "setting"),
    [
        ("maximum messages per subject exceeded", "TSUNAGU_STREAMS_MAX_MSGS_PER_SUBJECT"),
        ("maximum bytes exceeded", "TSUNAGU_STREAMS_MAX_BYTES"),
    ],
)
def test_a_full_stream_refusal_names_the_limit_and_its_setting(
    description: str, setting: str
) -> None:
    error = stream_full(refusal(description))
    assert isinstance(error, StreamFullError)
    assert str(error).startswith("stream INTERACTIONS is full: ")
    assert setting in str(error)


@pytest.mark.parametrize(
    "error",
    [
        ServiceUnavailableError(code=503, description="no responders"),
        APIError(code=400, err_code=10060, description="expected stream does not match"),
        TimeoutError(),
    ],
)
def test_other_failures_are_not_a_full_stream(error: Exception) -> None:
    assert stream_full(error) is None


def test_the_alarm_counts_every_refusal_per_tenant_and_logs_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alarm = StreamFullAlarm()
    error = StreamFullError("stream INTERACTIONS is full: its size limit is reached")
    with caplog.at_level(logging.ERROR, logger="tsunagu.bus.publisher"):
        for tenant in ["acme", "acme", "globex"]:
            alarm(tenant, error)
    assert alarm.refused == {"acme": 2, "globex": 1}
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("ALARM stream INTERACTIONS is full")
