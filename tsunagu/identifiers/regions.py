"""Phone regions as a settings type: an unknown region fails start-up, not every lookup."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from tsunagu.identifiers.phone import is_supported_region


def _check_region(region: str) -> str:
    if not is_supported_region(region):
        raise ValueError(f"{region!r} is not a phone region code (e.g. 'JP', 'US')")
    return region


PhoneRegion = Annotated[str, AfterValidator(_check_region)]
"""An ISO 3166-1 alpha-2 region the phone-number library knows (default region of a tenant)."""
