"""Personal data and numbers replaced before any text is vectorised, so none becomes a term."""

from __future__ import annotations

import re

# Order matters: URLs and emails hold digits and dots that the later patterns would split.
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# An order or reference number: letters glued to digits (ORD-2024-0042, A12345, #5521).
_REFERENCE = re.compile(r"#?\b[A-Za-z]{0,4}[-_]?\d[\w-]*", re.ASCII)
# Phones and any other run of digits with separators (090-1234-5678, +81 90 1234 5678).
_DIGITS = re.compile(r"\+?\d[\d\s().-]*\d|\d")

MASKS = ("<url>", "<email>", "<number>")


def mask(text: str) -> str:
    """`text` with URLs, emails, phones, order numbers and other digits replaced by markers.

    Expects NFKC-normalised text (full-width digits already ASCII). Markers are surrounded by
    spaces so they never glue onto a neighbouring word.
    """
    text = _URL.sub(" <url> ", text)
    text = _EMAIL.sub(" <email> ", text)
    text = _REFERENCE.sub(" <number> ", text)
    return _DIGITS.sub(" <number> ", text)
