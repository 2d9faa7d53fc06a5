"""E-mail address normalisation: Unicode folding, trimming and lower-casing."""

from __future__ import annotations

from tsunagu.identifiers.errors import IdentifierFormatError
from tsunagu.identifiers.text import fold, has_invisible_or_space

# RFC 5321 path limit (256 octets) minus the angle brackets.
MAX_EMAIL_CHARS = 254


def normalize_email(raw: str) -> str:
    """Normalise an e-mail address to its matching key.

    The whole address is lower-cased: mailbox local parts are case-sensitive in theory, but no
    provider a customer uses treats them so, and two spellings of one address must link.
    Sub-address tags (`+tag`) are kept: folding them is a per-tenant decision made later.

    Args:
        raw: The address as received (`" Taro.Yamada@Example.JP "`).

    Returns:
        The NFKC-folded, trimmed, lower-cased address.

    Raises:
        IdentifierFormatError: Not exactly one "@", an empty local part, a domain without a
            dot or with an empty label, whitespace or control characters, or longer than
            254 characters.
    """
    address = fold(raw, lower=True)
    if not address:
        raise IdentifierFormatError("e-mail address is empty")
    if len(address) > MAX_EMAIL_CHARS:
        raise IdentifierFormatError(f"e-mail address longer than {MAX_EMAIL_CHARS} characters")
    if has_invisible_or_space(address):
        raise IdentifierFormatError("e-mail address contains whitespace or control characters")
    if address.count("@") != 1:
        raise IdentifierFormatError("e-mail address must contain exactly one '@'")
    local, domain = address.split("@")
    if not local:
        raise IdentifierFormatError("e-mail address has an empty local part")
    if "." not in domain:
        raise IdentifierFormatError("e-mail domain must contain a dot")
    if any(not label for label in domain.split(".")):
        raise IdentifierFormatError("e-mail domain has an empty label")
    return address
