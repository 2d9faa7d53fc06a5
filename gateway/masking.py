"""What each role sees of each personal value: the one place masks are decided.

Every personal string the gateway serves is one of a few *classes* (``Personal``): a phone
number, an email address, a name, a postal address, free text (which can hold any of them),
an identifier (a phone, an email or a handle, by its kind) or an opaque technical key.
``view`` answers what a role sees of a value of a class; ``gateway.masking_schema`` applies it
to every string field of the schema whose role decision is personal, so no type can forget.
``docs/privacy.md`` (*Masking by role*) is the matrix in words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

import phonenumbers

from gateway.roles import Role


class Personal(StrEnum):
    """What kind of personal value a field holds."""

    PHONE = "phone"
    EMAIL = "email"
    NAME = "name"
    ADDRESS = "address"
    FREE_TEXT = "free text"
    # Value decided by the identifier's kind (a phone, an email, a handle, an opaque id).
    IDENTIFIER = "identifier"
    # Message ids, call ids, URIs: technical keys; still scanned for card-like digit runs.
    OPAQUE = "opaque"


class Exposure(StrEnum):
    """How much of a value a role sees."""

    FULL = "full"
    MASKED = "masked"


_MASK = "****"

# Roles that see phones, emails and addresses in full. Card-like digit runs are masked for
# every role: cards are redacted at ingest, and nothing a role does needs a PAN.
_FULL_VIEW: frozenset[str] = frozenset({Role.SUPERVISOR.value, Role.PRIVACY_OFFICER.value})

REVEALING_ROLES: frozenset[str] = frozenset(
    {Role.AGENT.value, Role.SUPERVISOR.value, Role.PRIVACY_OFFICER.value}
)
"""Roles that may ``reveal`` a masked value (with a reason, audited)."""

# Nine digits or more, optionally separated by spaces, dashes, dots or brackets (full-width
# digits and separators included): phone and card numbers in what people write. Dates and
# times (at most eight digits) stay readable.
_DIGIT_RUN = re.compile(r"\+?\d(?:[ \-.()\u3000\u2010\u2212\uff0d\u30fc\uff08\uff09]{0,2}\d){8,}")
# What cannot be part of an address written in text (its neighbours: spaces, brackets, ...).
_NOT_IN_ADDRESS = frozenset(" \t\r\n\u3000@<>()[],;:\"'")
_KEPT_DIGITS = 4
_CARD_MIN_DIGITS = 13
_CARD_MAX_DIGITS = 19


def exposure(roles: Iterable[str]) -> Exposure:
    """How much of phones, emails and addresses a principal with ``roles`` sees."""
    return Exposure.FULL if not _FULL_VIEW.isdisjoint(roles) else Exposure.MASKED


def view(roles: Iterable[str], kind: Personal, value: str) -> str:
    """What a principal with ``roles`` sees of ``value``, a personal value of class ``kind``.

    Args:
        roles: The principal's roles.
        kind: The value's class.
        value: The stored value.

    Returns:
        The value as this principal may see it.
    """
    if exposure(roles) is Exposure.FULL or kind is Personal.NAME:
        # Names are how an agent greets a caller; card runs go whoever reads free text.
        return value if kind is Personal.NAME else mask_card_runs(value)
    if kind is Personal.PHONE:
        return mask_phone(value)
    if kind is Personal.EMAIL:
        return mask_email(value)
    if kind is Personal.ADDRESS:
        return mask_address(value)
    if kind is Personal.OPAQUE:
        return mask_card_runs(value)
    return mask_free_text(value)


def view_identifier(roles: Iterable[str], identifier_kind: str, value: str) -> str:
    """What a principal sees of an identifier's value, by the identifier's kind (``PHONE``)."""
    kind = {"PHONE": Personal.PHONE, "EMAIL": Personal.EMAIL}.get(identifier_kind)
    return view(roles, kind or Personal.FREE_TEXT, value)


def mask_phone(value: str) -> str:
    """``+819012345678`` → ``+81 90-****-5678``: country, area or carrier, last four digits."""
    try:
        number = phonenumbers.parse(value, None if value.startswith("+") else "JP")
    except phonenumbers.NumberParseException:
        return _mask_digits(value)
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    groups = formatted.replace("-", " ").split(" ")
    if len(groups) < 3:
        return _mask_digits(value)
    # Keep the country code, the first group (area or carrier) and the last four digits.
    kept = len(groups[0]) + 1 + len(groups[1])
    head, tail = formatted[:kept], formatted[kept:]
    return head + _mask_digits(tail)


def mask_email(value: str) -> str:
    """``hanako@example.com`` → ``h****@example.com``."""
    local, at, domain = value.rpartition("@")
    if not at or not local:
        return _mask_digits(value) if value else value
    return f"{local[0]}{_MASK}@{domain}"


def mask_address(value: str) -> str:
    """A postal address → its first part (prefecture, city or postcode area) and a mask."""
    stripped = value.strip()
    if not stripped:
        return value
    first = stripped.split()[0] if " " in stripped else stripped[:3]
    return f"{mask_free_text(first)} {_MASK}"


def mask_free_text(value: str) -> str:
    """Emails, phone numbers and card-like numbers inside text → masked; the rest as written."""
    return mask_digit_runs(_mask_emails_in(value))


def mask_digit_runs(value: str) -> str:
    """Every run of nine digits or more (phones, cards) → all but its last four masked."""
    return _DIGIT_RUN.sub(lambda found: _mask_digits(found.group(0)), value)


def mask_card_runs(value: str) -> str:
    """Card-like numbers (13-19 digits passing the Luhn check) → all but the last four masked."""
    return _DIGIT_RUN.sub(
        lambda found: (
            _mask_digits(found.group(0)) if _card_like(found.group(0)) else found.group(0)
        ),
        value,
    )


def _card_like(run: str) -> bool:
    digits = [int(char) for char in run if char.isdigit()]
    if not _CARD_MIN_DIGITS <= len(digits) <= _CARD_MAX_DIGITS:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if position % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


def _mask_emails_in(text: str) -> str:
    # Walks out from each "@" rather than matching a regular expression: a pattern for
    # addresses backtracks quadratically on long texts without one (64 KiB is allowed).
    pieces: list[str] = []
    done = 0
    at = text.find("@")
    while at != -1:
        start = at
        while start > done and text[start - 1] not in _NOT_IN_ADDRESS:
            start -= 1
        end = at + 1
        while end < len(text) and text[end] not in _NOT_IN_ADDRESS:
            end += 1
        domain = text[at + 1 : end]
        if start < at and "." in domain.strip("."):
            pieces.append(text[done:start])
            pieces.append(mask_email(text[start:end]))
            done = end
        at = text.find("@", max(end, at + 1))
    pieces.append(text[done:])
    return "".join(pieces)


def _mask_digits(value: str) -> str:
    digits = [index for index, char in enumerate(value) if char.isdigit()]
    hidden = set(digits[:-_KEPT_DIGITS]) if len(digits) > _KEPT_DIGITS else set(digits)
    return "".join("*" if index in hidden else char for index, char in enumerate(value))
