"""Opaque timeline cursors: (occurred_at, event_id) of the last entry of a page."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime


class InvalidCursorError(ValueError):
    """A cursor that this service did not issue."""


def encode_cursor(occurred_at: datetime, event_id: str) -> str:
    raw = json.dumps([occurred_at.isoformat(), event_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_CURSOR_LENGTH = 512


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursorError("invalid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, event_id = json.loads(raw)
        parsed = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, RecursionError) as exc:
        raise InvalidCursorError("invalid cursor") from exc
    if not isinstance(event_id, str) or parsed.tzinfo is None:
        raise InvalidCursorError("invalid cursor")
    return parsed, event_id
