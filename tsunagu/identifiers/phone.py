"""Phone number normalisation to E.164 with the `phonenumbers` library."""

from __future__ import annotations

import phonenumbers

from tsunagu.identifiers.errors import IdentifierFormatError
from tsunagu.identifiers.text import fold, has_control

MAX_PHONE_CHARS = 64

_E164 = phonenumbers.PhoneNumberFormat.E164
# phonenumbers only knows Latin extension markers; Japanese forms write 内線 ("extension").
_JAPANESE_EXTENSION = "内線"


def is_supported_region(region: str) -> bool:
    """Tell whether `region` is a region code `phonenumbers` knows (e.g. "JP", "US").

    Args:
        region: ISO 3166-1 alpha-2 region code, upper case.

    Returns:
        True when national-format numbers can be parsed with this default region.
    """
    return region in phonenumbers.SUPPORTED_REGIONS


def normalize_phone(raw: str, *, default_region: str) -> tuple[str, bool]:
    """Normalise a phone number to its E.164 matching key.

    National formats are read with `default_region`; full-width digits and punctuation are
    folded with NFKC first; extensions (`ext. 123`, `内線 123`) are dropped because they do
    not identify a person.

    Args:
        raw: The number as the channel saw it (`090-1234-5678`, `+81 90-1234-5678`, ...).
        default_region: Region used for numbers written without a country code.

    Returns:
        `(value, matchable)`. For a valid number, its E.164 form and True. For a number that
        parses but is not valid, a stable key (its E.164 form when that re-normalises to
        itself, otherwise its cleaned digits) and False: it is kept on the record but must
        never link customers.

    Raises:
        IdentifierFormatError: No digits, longer than 64 characters, control characters, not a
            phone number at all, or (for some invalid numbers mixed with letters) no key that
            re-normalises to itself.
    """
    text = fold(raw, lower=False)
    if len(text) > MAX_PHONE_CHARS:
        raise IdentifierFormatError(f"phone number longer than {MAX_PHONE_CHARS} characters")
    if has_control(text):
        raise IdentifierFormatError("phone number contains control characters")
    if not any(char.isdigit() for char in text):
        raise IdentifierFormatError("phone number has no digits")
    text = text.replace(_JAPANESE_EXTENSION, " ext. ")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise IdentifierFormatError(f"not a phone number: {exc}") from exc
    key = _key(text, number, default_region)
    # The timeline normalises stored values again, so a key that would re-normalise to
    # something else (or, worse, to a matchable number) is refused rather than stored.
    if key is None or _key_of(key[0], default_region) != key:
        raise IdentifierFormatError("phone number has no stable normal form")
    return key


def _key_of(text: str, region: str) -> tuple[str, bool] | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return _key(text, number, region)


def _key(text: str, number: phonenumbers.PhoneNumber, region: str) -> tuple[str, bool] | None:
    """Choose the key for a parsed number, without checking that it re-normalises to itself."""
    e164 = phonenumbers.format_number(number, _E164)
    if phonenumbers.is_valid_number(number):
        return e164, True
    # phonenumbers' E.164 output of an invalid number is not always a fixed point: a national
    # prefix after the country code loses one zero per round (`+820006079` -> `+82006079` ->
    # `+8206079`), and the stripping can even turn it into a valid number. So the E.164 form is
    # the key only when it is a stable invalid number; otherwise the cleaned digits are.
    if _is_stable_invalid(e164, region):
        return e164, False
    # phonenumbers reads letters as vanity digits only in some inputs, so both spellings are
    # tried: the key must be the one that still parses to this very number.
    for cleaned in _cleaned_candidates(text, number):
        if _same_invalid_number(cleaned, region, number):
            return cleaned, False
    return None


def _is_stable_invalid(e164: str, region: str) -> bool:
    try:
        again = phonenumbers.parse(e164, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.format_number(again, _E164) == e164 and not phonenumbers.is_valid_number(
        again
    )


def _cleaned_candidates(text: str, number: phonenumbers.PhoneNumber) -> list[str]:
    """Digits of `text` (letters dropped, or read as vanity digits), minus the extension."""
    first_digit = next(i for i, char in enumerate(text) if char.isdigit())
    plus = "+" if "+" in text[:first_digit] else ""
    extension = number.extension or ""
    candidates: list[str] = []
    for spelling in (text, phonenumbers.convert_alpha_characters_in_number(text)):
        digits = phonenumbers.normalize_digits_only(spelling)
        if extension and digits.endswith(extension):
            digits = digits[: -len(extension)]
        if digits:
            candidates.append(plus + digits)
    return candidates


def _same_invalid_number(cleaned: str, region: str, number: phonenumbers.PhoneNumber) -> bool:
    """Tell whether `cleaned` still parses to `number` (ignoring the extension), invalid."""
    try:
        again = phonenumbers.parse(cleaned, region)
    except phonenumbers.NumberParseException:
        return False
    return (
        not phonenumbers.is_valid_number(again)
        and again.country_code == number.country_code
        and again.national_number == number.national_number
        and bool(again.italian_leading_zero) == bool(number.italian_leading_zero)
        and (again.number_of_leading_zeros or 1) == (number.number_of_leading_zeros or 1)
    )
