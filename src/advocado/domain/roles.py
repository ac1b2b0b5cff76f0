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


class Action(StrEnum):
    """What a console user may do. Reading the console and the dashboard is open to every
    role; each action that changes something is listed here and checked on the server."""

    MANAGE_USERS = "users.manage"
    MANAGE_SETTINGS = "settings.manage"
    EDIT_PROGRAMS = "programs.edit"
    EDIT_PLAYBOOKS = "playbooks.edit"
    EDIT_TEMPLATES = "templates.edit"
    SEND_MESSAGES = "messages.send"  # retry a dead or uncertain message
    EDIT_SEGMENTS = "segments.edit"
    EDIT_LEXICON = "lexicon.edit"
    REVIEW_REFERRALS = "referrals.review"
    CORRECT_LEDGER = "ledger.correct"
    SET_MARKETING_FIGURES = "dashboard.settings"  # e.g. the paid-channel CAC
    EDIT_TASKS = "tasks.edit"
    EDIT_CHALLENGES = "challenges.edit"
    EDIT_AMBASSADORS = "ambassadors.edit"
    EDIT_PLANS = "plans.edit"  # program plans (goals, recruitment targets)
    READ_AUDIT = "audit.read"


_MARKETING = frozenset({
    Action.EDIT_PROGRAMS, Action.EDIT_PLAYBOOKS, Action.EDIT_TEMPLATES, Action.SEND_MESSAGES,
    Action.EDIT_SEGMENTS,
    Action.EDIT_LEXICON, Action.REVIEW_REFERRALS, Action.SET_MARKETING_FIGURES, Action.EDIT_PLANS,
})  # fmt: skip
_COMMUNITY = frozenset({Action.EDIT_TASKS, Action.EDIT_CHALLENGES, Action.EDIT_AMBASSADORS})

# The one table of who may do what. Admin: everything. Marketer: programs, playbooks,
# templates, segments (and the marketing settings). Community manager: tasks, challenges,
# ambassadors, and reads the rest. Analyst: reads everything, the audit log too, changes nothing.
PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.MARKETER: _MARKETING,
    Role.COMMUNITY: _COMMUNITY,
    Role.ANALYST: frozenset({Action.READ_AUDIT}),
}

_ROLE_NAMES = {
    Role.ADMIN: ("admin", "管理员"),
    Role.MARKETER: ("marketer", "市场人员"),
    Role.COMMUNITY: ("community manager", "社区经理"),
    Role.ANALYST: ("analyst", "分析师"),
}


def may(who: str | Role, action: Action) -> bool:
    """Whether a user with role `who` may do `action`. An unknown role may do nothing."""
    try:
        found = role(str(who))
    except ValueError:
        return False
    return action in PERMISSIONS[found]


def refusal(who: str | Role, action: Action) -> str:
    """Why `who` may not do `action`, in English and Chinese, naming who may."""
    allowed = [r for r in Role if action in PERMISSIONS[r]]
    en = ", ".join(_ROLE_NAMES[r][0] for r in allowed)
    zh = "、".join(_ROLE_NAMES[r][1] for r in allowed)
    try:
        mine_en, mine_zh = _ROLE_NAMES[role(str(who))]
    except ValueError:
        mine_en = mine_zh = str(who)
    return (
        f"Your role ({mine_en}) may not do {action.value}; only {en} may. / "
        f"您的角色（{mine_zh}）无权执行 {action.value}；仅{zh}可以。"
    )
