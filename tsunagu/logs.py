"""How every process writes its log: readable text or JSON lines, without personal data."""

from __future__ import annotations

import json
import logging
import os
import re
import traceback
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from opentelemetry import trace
from pydantic_settings import BaseSettings, SettingsConfigDict

# A URL's query string: what follows "?" after a path or host, up to whitespace or a quote.
# Query strings carry personal data (`?access_token=…&phone=…`); uvicorn logs WebSocket
# handshakes and some errors with the full path, so every log line goes through this.
_QUERY_STRING = re.compile(r"(?<=[\w/\]])\?[^\s\"'<>]+")

# Exceptions whose text quotes the data they were given: a pydantic error repeats the input,
# a driver error the document the store refused. Their type (and code) is logged, never args.
_TEXT_WITHHELD_FROM = frozenset({"pydantic", "pydantic_core", "pymongo", "bson", "gridfs"})

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# How Python joins the tracebacks of chained exceptions.
_CAUSED = "\nThe above exception was the direct cause of the following exception:\n\n"
_DURING = "\nDuring handling of the above exception, another exception occurred:\n\n"


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


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def exception_text(exc: BaseException) -> str:
    """What a log may say an exception was: its type, and its message unless that may quote data.

    Driver and validation errors keep only their type and numeric code; other messages lose
    their URL query strings.
    """
    name = _type_name(exc)
    if type(exc).__module__.partition(".")[0] in _TEXT_WITHHELD_FROM:
        code = getattr(exc, "code", None)
        return f"{name} (code {code})" if isinstance(code, int) else name
    message = scrub_query_strings(str(exc))
    return f"{name}: {message}" if message else name


def safe_traceback(exc: BaseException) -> str:
    """The traceback as Python prints it (chained causes included), each exception's line
    replaced by `exception_text`; frames show code, never local values."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = scrub_query_strings("".join(traceback.format_tb(current.__traceback__)))
        parts.append(f"Traceback (most recent call last):\n{frames}{exception_text(current)}\n")
        if current.__cause__ is not None:
            parts.append(_CAUSED)
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            parts.append(_DURING)
            current = current.__context__
        else:
            current = None
    # Collected from the outermost exception inwards; Python prints the innermost first.
    return "".join(reversed(parts)).strip("\n")


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
            line["exception"] = {"type": _type_name(exc), "traceback": safe_traceback(exc)}
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(settings: LogSettings, *, service: str) -> logging.Formatter:
    """The formatter `settings` ask for."""
    if settings.format is LogFormat.JSON:
        return JsonLineFormatter(service=service)
    return TextFormatter()
