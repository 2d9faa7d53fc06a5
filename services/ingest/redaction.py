"""Card numbers (Luhn-valid PANs) in free text are redacted before anything is published."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from google.protobuf.descriptor import FieldDescriptor

if TYPE_CHECKING:
    from google.protobuf.message import Message

# Free-text fields only: ids, addresses and identifiers are never rewritten (a 15-digit
# E.164 number may pass Luhn by chance; a rewritten id would break threading).
FREE_TEXT_FIELDS = frozenset(
    f"tsunagu.v1.{name}"
    for name in (
        "Content.text",
        "Content.subject",
        "Attachment.filename",
        "CallDetail.transcript",
        "EmailDetail.subject",
        "EmailDetail.text_body",
        "EmailDetail.html_body",
        "FormField.value",
        "NoteAction.text",
        "HandoffAction.summary",
        "HandoffAction.open_questions",
        "EscalationAction.reason",
        "ProgressUpdateAction.message",
        "TransferAction.reason",
        "ResolutionAction.summary",
        "CsatResponse.comment",
        "CancellationRequestAction.reason_detail",
        "CancellationOutcomeAction.note",
        "CompleteFollowUpAction.note",
    )
)

# A run of digits in groups joined by single spaces or dashes ("4111 1111-1111 1111").
_DIGIT_RUN = re.compile(r"(?<!\d)\d+(?:[ -]\d+)*(?!\d)")
_SEPARATOR = re.compile(r"[ -]")
_PAN_DIGITS = range(13, 20)


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check (as every payment card number does)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def redact_pans(text: str) -> tuple[str, int]:
    """`text` with every card number replaced by `[card ****NNNN]` (its last four digits).

    The last four are what PCI DSS allows to be kept and what an agent asks a caller to
    confirm; the rest never leaves ingestion.

    Returns:
        The redacted text and how many numbers were redacted.
    """
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        redacted, found = _redact_run(match.group(0))
        count += found
        return redacted

    return _DIGIT_RUN.sub(replace, text), count


def _redact_run(run: str) -> tuple[str, int]:
    # A card number may sit beside other numbers in one run ("4111 ... 1111 0312345678"):
    # try spans of whole groups, longest first from the left.
    pieces = _SEPARATOR.split(run)
    separators = _SEPARATOR.findall(run)
    out: list[str] = []
    found = 0
    start = 0
    while start < len(pieces):
        end = _card_end(pieces, start)
        if end is None:
            out.append(pieces[start])
            out.append(separators[start] if start < len(separators) else "")
            start += 1
            continue
        digits = "".join(pieces[start:end])
        out.append(f"[card ****{digits[-4:]}]")
        out.append(separators[end - 1] if end - 1 < len(separators) else "")
        found += 1
        start = end
    return "".join(out), found


def _card_end(pieces: list[str], start: int) -> int | None:
    for end in range(len(pieces), start, -1):
        digits = "".join(pieces[start:end])
        if len(digits) in _PAN_DIGITS and luhn_valid(digits):
            return end
    return None


def redact_message(message: Message) -> int:
    """Redact card numbers in every free-text field of `message`, in place.

    Returns:
        How many numbers were redacted.
    """
    count = 0
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            children = value if _repeated(field) else [value]
            count += sum(redact_message(child) for child in children)
        elif field.type == FieldDescriptor.TYPE_STRING and field.full_name in FREE_TEXT_FIELDS:
            if _repeated(field):
                for index, item in enumerate(value):
                    value[index], found = redact_pans(item)
                    count += found
            else:
                redacted, found = redact_pans(value)
                if found:
                    setattr(message, field.name, redacted)
                    count += found
    return count


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)
