"""How every process writes its log: readable text or JSON lines, without personal data."""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from opentelemetry import trace
from pydantic_settings import BaseSettings, SettingsConfigDict

from tsunagu.tracebacks import exception_name, frames_only

# A URL's query string: what follows "?" after a path or host, up to whitespace or a quote.
# Query strings carry personal data (`?access_token=…&phone=…`); uvicorn logs WebSocket
# handshakes and some errors with the full path, so every log line goes through this.
_QUERY_STRING = re.compile(r"(?<=[\w/\]])\?[^\s\"'<>]+")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def scrub_query_strings(text: str) -> str:
    """Replace every URL query string in `text` by ``?…``."""
    return _QUERY_STRING.sub("?…", text)


class QueryStringScrubber(logging.Filter):
    """Rewrites each record's message without URL query strings (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_query_strings(message)
        if scrubbed != message:
            # Formatted here once: the arguments themselves are what carried the query.
            record.msg, record.args = scrubbed, None
        return True


class LogFormat(StrEnum):
    """``text``: one readable line per record (the local default); ``json``: JSON lines."""

    TEXT = "text"
    JSON = "json"


class LogSettings(BaseSettings):
    """``TSUNAGU_LOG_FORMAT`` and ``TSUNAGU_LOG_LEVEL``, the same for every process."""

    model_config = SettingsConfigDict(env_prefix="TSUNAGU_LOG_", extra="ignore")

    format: LogFormat = LogFormat.TEXT
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


def safe_traceback(exc: BaseException) -> str:
    """`frames_only` (classes and frames, no messages), and no query string in a source line."""
    return scrub_query_strings(frames_only(exc))


class TextFormatter(logging.Formatter):
    """Today's readable line, with tracebacks through `safe_traceback`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        _, exc, _ = ei
        return super().formatException(ei) if exc is None else safe_traceback(exc)


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record, for log collectors.

    Fields: ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``service``,
    ``pid``; ``trace_id`` and ``span_id`` (hex, as OpenTelemetry and W3C write them) when the
    record is logged inside a recording span; ``exception`` (``type`` and a scrubbed
    ``traceback``) when it carries one.
    """

    def __init__(self, *, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self._service,
            "pid": record.process or os.getpid(),
        }
        # Formatted where it was logged (a StreamHandler is synchronous): the current span is
        # the one the code that logged was in.
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line["trace_id"] = trace.format_trace_id(context.trace_id)
            line["span_id"] = trace.format_span_id(context.span_id)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line["exception"] = {"type": exception_name(exc), "traceback": safe_traceback(exc)}
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(settings: LogSettings, *, service: str) -> logging.Formatter:
    """The formatter `settings` ask for."""
    if settings.format is LogFormat.JSON:
        return JsonLineFormatter(service=service)
    return TextFormatter()
