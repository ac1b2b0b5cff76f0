"""Who a console user is: the roles, defined once."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MARKETER = "marketer"
    COMMUNITY = "community"
    ANALYST = "analyst"


def role(value: str) -> Role:
    """The role named by `value` (case and spaces ignored); ValueError names the valid ones."""
    raw = (value or "").strip().lower()
    try:
        return Role(raw)
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise ValueError(f"role {value!r} is not one of {valid}") from None
