"""The roles a principal can hold: the rows of the role x operation matrix."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Roles as tokens carry them (``Principal.roles`` holds these values as strings)."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ANALYST = "analyst"
    ADMIN = "admin"
    PRIVACY_OFFICER = "privacy_officer"
