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


# --- What each role may do (UGC challenges and the task queue, issue 5) ----------------------
# Checked on the server by every handler that changes something; analysts read only.


class Permission(StrEnum):
    WORK_TASKS = "work_tasks"  # record a task's outcome
    REVIEW_ENTRIES = "review_entries"  # approve, reject, feature challenge entries
    MANAGE_CHALLENGES = "manage_challenges"  # create or update challenges


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.COMMUNITY: frozenset(Permission),
    Role.MARKETER: frozenset(Permission),
    Role.ANALYST: frozenset(),
}


def may(user_role: str, permission: Permission) -> bool:
    """Whether a user of `user_role` may do `permission` (an unknown role may do nothing)."""
    try:
        return permission in _GRANTS[Role(user_role)]
    except ValueError:
        return False


# --- Who may change playbooks (issue 5) ------------------------------------------------------
PLAYBOOK_EDITORS = frozenset({Role.ADMIN, Role.MARKETER})


def may_edit_playbooks(user_role: str) -> bool:
    """Applying, enabling or disabling an automation: admins and marketers; others read."""
    try:
        return Role(user_role) in PLAYBOOK_EDITORS
    except ValueError:
        return False
