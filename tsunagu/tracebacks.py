"""Tracebacks without exception messages: where a failure happened, never the data it held.

An exception's message can quote what it failed on: a driver error its "full error" with the
document, a protobuf or validation error the value, a gRPC error the server's details. A log
line built with `log.exception` repeats that message (and the messages of its causes).
`frames_only` keeps what diagnosing needs, the chain of exception classes and the stack
frames with their source lines, and drops every message.
"""

from __future__ import annotations

import traceback


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, innermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not known for known in seen):
        seen.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return list(reversed(seen))


def exception_name(exc: BaseException) -> str:
    """The exception's class, qualified by its module unless it is a builtin."""
    kind = type(exc)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def frames_only(exc: BaseException) -> str:
    """A traceback of ``exc`` and its causes in Python's layout, with class names only.

    Args:
        exc: A raised exception.

    Returns:
        Multi-line text ending in the outermost exception's class name.
    """
    parts = []
    for link in _chain(exc):
        frames = "".join(traceback.format_tb(link.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{frames}{exception_name(link)}")
    return "\n\nwhich led to:\n\n".join(parts)
