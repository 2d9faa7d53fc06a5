"""Social network handle normalisation: `network:handle` keys."""

from __future__ import annotations

import re

from tsunagu.identifiers.errors import IdentifierFormatError
from tsunagu.identifiers.text import fold, has_invisible_or_space

MAX_HANDLE_CHARS = 100

_NETWORK = re.compile(r"[a-z0-9_-]{1,32}")


def normalize_network(network: str) -> str:
    """Normalise a social network name ("X" -> "x").

    Args:
        network: Network name as received.

    Returns:
        The trimmed, lower-cased name.

    Raises:
        IdentifierFormatError: Empty, or not 1..32 characters of `[a-z0-9_-]`.
    """
    name = network.strip().lower()
    if not _NETWORK.fullmatch(name):
        raise IdentifierFormatError(
            "social network must be 1..32 characters of a-z, 0-9, '_' or '-'", part="network"
        )
    return name


def normalize_handle(handle: str) -> str:
    """Normalise a handle alone ("@Taro_Y" -> "taro_y").

    Args:
        handle: Handle as received, with or without its leading "@".

    Returns:
        The folded, lower-cased handle without the "@".

    Raises:
        IdentifierFormatError: Empty, longer than 100 characters, more than one leading "@",
            or containing whitespace or control characters.
    """
    text = fold(handle, lower=True)
    text = text.removeprefix("@")
    # Only one "@" is a decoration; a second one would be stripped by the next normalisation
    # and break idempotence, and no network allows it in a handle.
    if text.startswith("@"):
        raise IdentifierFormatError("social handle has more than one leading '@'")
    if not text:
        raise IdentifierFormatError("social handle is empty")
    if len(text) > MAX_HANDLE_CHARS:
        raise IdentifierFormatError(f"social handle longer than {MAX_HANDLE_CHARS} characters")
    if has_invisible_or_space(text):
        raise IdentifierFormatError("social handle contains whitespace or control characters")
    return text


def normalize_social_handle(network: str, handle: str) -> str:
    """Normalise a handle on a network to its matching key.

    Args:
        network: Network name ("x", "instagram", "line"); required.
        handle: Handle as received ("@Taro_Y").

    Returns:
        `"network:handle"`, e.g. `"x:taro_y"`.

    Raises:
        IdentifierFormatError: The network or the handle is invalid (see `normalize_network`
            and `normalize_handle`).
    """
    return f"{normalize_network(network)}:{normalize_handle(handle)}"
