"""JSON log lines: the fields collectors index, the current span's ids, no personal data."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, ValidationError

from tsunagu.logs import JsonLineFormatter, LogFormat, LogSettings, QueryStringScrubber, formatter

EMAIL = "hana.sato@example.com"


class _Contact(BaseModel):
    phone: int


@pytest.fixture
def written() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose records are formatted as JSON lines into a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter(service="tsunagu-test"))
    handler.addFilter(QueryStringScrubber())
    logger = logging.getLogger("tests.json_lines")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_one_json_line_with_the_indexed_fields(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = written

    logger.warning("customer %s merged into %s", "c-1", "c-2")

    [line] = lines(stream)
    assert line["level"] == "WARNING"
    assert line["logger"] == "tests.json_lines"
    assert line["message"] == "customer c-1 merged into c-2"
    assert line["service"] == "tsunagu-test"
    assert isinstance(line["pid"], int)
    assert isinstance(line["timestamp"], str)
    assert line["timestamp"].endswith("Z")
    stamp = datetime.fromisoformat(line["timestamp"])
    assert stamp.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    assert "trace_id" not in line
    assert "span_id" not in line


def test_a_record_logged_inside_a_span_carries_its_trace_and_span_ids(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = written
    tracer = TracerProvider().get_tracer(__name__)

    with tracer.start_as_current_span("store event") as span:
        logger.info("stored")
    logger.info("after")

    inside, after = lines(stream)
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert "trace_id" not in after


def test_an_exception_is_its_type_and_a_traceback_without_the_data_it_quoted(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = written

    try:
        try:
            _Contact.model_validate({"phone": EMAIL})
        except ValidationError as error:
            raise RuntimeError("contact https://crm.example/c?email=x rejected") from error
    except RuntimeError:
        logger.exception("could not record the contact")

    [line] = lines(stream)
    assert line["message"] == "could not record the contact"
    exception = line["exception"]
    assert isinstance(exception, dict)
    assert exception["type"] == "RuntimeError"
    traceback = exception["traceback"]
    # Both exceptions and where they were raised, in Python's order; no message at all (a
    # message can quote what it failed on), so neither the input nor the query.
    assert "pydantic_core._pydantic_core.ValidationError\n" in traceback
    assert "which led to" in traceback
    assert traceback.rstrip().endswith("RuntimeError")
    assert "_Contact.model_validate" in traceback
    assert traceback.index("ValidationError") < traceback.index("RuntimeError")
    assert EMAIL not in stream.getvalue()
    assert "email=x" not in stream.getvalue()


def test_text_stays_the_default_and_its_tracebacks_are_scrubbed_too() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(LogSettings.model_construct(), service="tsunagu-test"))
    record = logging.LogRecord("tests.text", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        _Contact.model_validate({"phone": EMAIL})
    except ValidationError:
        record.exc_info = sys.exc_info()
    handler.emit(record)

    assert LogSettings.model_construct().format is LogFormat.TEXT
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith(" ERROR tests.text: failed")
    assert rest[-1] == "pydantic_core._pydantic_core.ValidationError"
    assert EMAIL not in stream.getvalue()


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, LogSettings.model_construct()),
        ({"TSUNAGU_LOG_FORMAT": "json"}, LogSettings.model_construct(format=LogFormat.JSON)),
        ({"TSUNAGU_LOG_LEVEL": "DEBUG"}, LogSettings.model_construct(level="DEBUG")),
    ],
)
def test_format_and_level_come_from_the_environment_text_and_info_by_default(
    variables: dict[str, str], expected: LogSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TSUNAGU_LOG_FORMAT", "TSUNAGU_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    assert LogSettings() == expected
