"""Search keys: how names and identifier prefixes are folded so that typing finds people.

A name key is NFKC-normalised (full-width Latin and half-width katakana become ordinary
letters), case-folded, with katakana folded to hiragana and whitespace removed, so
"tanaka yui" in any width or case, "ﾀﾅｶ" / "タナカ" / "たなか", and "田中 太郎" / "田中太郎"
find each other by prefix.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# Katakana ァ..ヶ and the iteration marks ヽヾ sit 0x60 above their hiragana twins.
_KATAKANA_TO_HIRAGANA = {code: code - 0x60 for code in (*range(0x30A1, 0x30F7), 0x30FD, 0x30FE)}
_MAX_FOLD_ROUNDS = 8
# Above every character a name or identifier holds: `[key, key + TOP)` is "starts with key".
PREFIX_TOP = "\U0010ffff"
_PHONE_QUERY = re.compile(r"\+?[\d\s().-]+")


def _fold(text: str) -> str:
    for _ in range(_MAX_FOLD_ROUNDS):
        folded = unicodedata.normalize("NFKC", text).casefold()
        if folded == text:
            break
        text = folded
    return text


def name_key(name: str) -> str:
    """The folded form of a name that `SearchCustomers` matches prefixes against."""
    return "".join(_fold(name).translate(_KATAKANA_TO_HIRAGANA).split())


def with_search_key(customer: dict[str, Any]) -> dict[str, Any]:
    """The customer document with `search_name` derived from its display name."""
    key = name_key(customer.get("display_name") or "")
    updated = dict(customer)
    if key:
        updated["search_name"] = key
    else:
        updated.pop("search_name", None)
    return updated


def identifier_prefixes(query: str, *, country_code: int) -> list[str]:
    """Stored identifier values a query may be the start of.

    Identifiers are stored normalised (emails lower-cased, phones in E.164, opaque ids as
    given), so the query is tried as typed (NFKC), lower-cased, and, when it looks like a
    phone number, in E.164 with the tenant's country code for a national prefix
    ("090-12" → "+819012").
    """
    typed = unicodedata.normalize("NFKC", query).strip()
    candidates = [typed, typed.lower()]
    if _PHONE_QUERY.fullmatch(typed):
        digits = re.sub(r"\D", "", typed)
        if len(digits) >= 2:
            if typed.startswith("+"):
                candidates.append(f"+{digits}")
            elif digits.startswith("0"):
                candidates.append(f"+{country_code}{digits[1:]}")
            else:
                # With or without the country code typed in front.
                candidates.extend([f"+{digits}", f"+{country_code}{digits}"])
    return [c for c in dict.fromkeys(candidates) if len(c) >= 2]
