"""Soft signals: what two customer records share that suggests, but never proves, one person."""

from __future__ import annotations

import unicodedata

# Names that say nothing about who somebody is; they never produce suggestions.
_GENERIC_NAMES = frozenset(
    {"guest", "customer", "visitor", "unknown", "anonymous", "user", "お客様", "ゲスト", "匿名"}
)
# Form fields whose value is a postal address.
ADDRESS_FIELDS = frozenset({"address", "postal_address", "street_address", "住所"})
# Form fields whose value is the name the customer gave (compared case-folded and trimmed).
NAME_FIELDS = frozenset({"name", "full_name", "your_name", "氏名", "お名前", "名前"})
_SEPARATORS = frozenset({"・", "･", "-", "‐", "−", "ー", ",", "、", "."})


def _squeeze(text: str) -> str:
    """NFKC, case-fold, drop spaces and separators, until the text stops changing.

    Removing a space can let NFKC compose what it separated (a letter and an accent).
    """
    for _ in range(8):
        folded = unicodedata.normalize("NFKC", text).casefold()
        folded = "".join(ch for ch in folded if not ch.isspace() and ch not in _SEPARATORS)
        if folded == text:
            break
        text = folded
    return text


def name_key(display_name: str) -> str:
    """The comparable form of a name: width, case, spaces and dots folded away ("" = none).

    `佐藤 花子`, `佐藤花子` and `ｻﾄｳ ﾊﾅｺ`/`サトウハナコ` (half- and full-width) compare by
    script as written; no transliteration is attempted.
    """
    key = _squeeze(display_name)
    if len(key) < 2 or key in _GENERIC_NAMES:
        return ""
    return key


def address_key(address: str) -> str:
    """The comparable form of a postal address ("" when too short to mean anything)."""
    key = _squeeze(address)
    return key if len(key) >= 8 else ""
