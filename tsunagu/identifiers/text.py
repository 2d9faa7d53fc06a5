"""Unicode helpers shared by the identifier normalisers."""

from __future__ import annotations

import unicodedata

# Unicode categories we never accept inside an identifier: control (Cc), format (Cf: zero-width
# and bidi marks, invisible yet they would make two identical-looking keys differ), unassigned
# (Cn), private use (Co) and surrogates (Cs).
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs"})

# NFKC followed by lower-casing can produce a string that NFKC changes again (and vice versa) for
# a handful of characters; a few rounds always reach a fixed point, which is what makes the
# normalisers idempotent. The bound only guards against a pathological Unicode table.
_MAX_FOLD_ROUNDS = 8


def fold(raw: str, *, lower: bool) -> str:
    """Apply NFKC, trim and (optionally) lower-case until the text stops changing.

    Args:
        raw: Text as received.
        lower: Whether to lower-case as well.

    Returns:
        The folded text; `fold(fold(x)) == fold(x)`.
    """
    text = raw
    for _ in range(_MAX_FOLD_ROUNDS):
        folded = unicodedata.normalize("NFKC", text).strip()
        if lower:
            folded = folded.lower()
        if folded == text:
            break
        text = folded
    return text


def has_control(text: str) -> bool:
    """Tell whether `text` contains a C0/C1 control character (category Cc).

    Args:
        text: Text to inspect.

    Returns:
        True when at least one control character is present.
    """
    return any(unicodedata.category(char) == "Cc" for char in text)


def has_invisible_or_space(text: str) -> bool:
    """Tell whether `text` contains whitespace, control, format or unassigned characters.

    Args:
        text: Text to inspect.

    Returns:
        True when at least one such character is present.
    """
    return any(
        char.isspace() or unicodedata.category(char) in _FORBIDDEN_CATEGORIES for char in text
    )
