"""The human task queue's rules (seed 000 level 4: automation stops, a person asks 1:1).
Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

MAX_NOTE = 2000


class TaskKind(StrEnum):
    AMBASSADOR_INVITE = "ambassador_invite"  # seed 000 level 4
    DETRACTOR_FOLLOW_UP = "detractor_follow_up"  # a 0-6 answer: apologise, listen, fix
    OTHER = "other"


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NO_ANSWER = "no_answer"


class TaskError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def outcome(value: str) -> Outcome:
    try:
        return Outcome((value or "").strip().lower())
    except ValueError:
        valid = ", ".join(o.value for o in Outcome)
        raise TaskError("outcome", f"{value!r} is not one of {valid}") from None


def note(value: str | None) -> str | None:
    text = (value or "").strip() or None
    if text and len(text) > MAX_NOTE:
        raise TaskError("note", f"at most {MAX_NOTE} characters")
    return text


def is_overdue(due_at: datetime, done: bool, moment: datetime) -> bool:
    """Open and past its due time."""
    return not done and due_at < moment


def queue_order(due_at: datetime, done: bool, moment: datetime) -> tuple[int, datetime]:
    """Sort key of the queue: overdue first (most overdue on top), then open by due date,
    then done ones. services.tasks sorts in SQL by the same rule; a test holds them equal."""
    if done:
        return (2, due_at)
    return (0 if is_overdue(due_at, done, moment) else 1, due_at)


@dataclass(frozen=True)
class Script:
    en: str
    zh_cn: str
    zh_tw: str

    def for_locale(self, locale: str) -> str:
        return {"zh-CN": self.zh_cn, "zh-TW": self.zh_tw}.get(locale, self.en)


# The shipped scripts. {name} is the customer's name, {brand} the brand.
SCRIPTS: dict[str, Script] = {
    TaskKind.AMBASSADOR_INVITE: Script(
        en=(
            "Hi {name}, thank you for what you told us: your insight is really sharp. We would "
            "like to invite you personally to our brand ambassador programme. As an ambassador "
            "you get: 1. new products to beta-test for free before launch; 2. direct "
            "conversations with our R&D engineers; 3. an official ambassador badge. Would you "
            "like to join?"
        ),
        zh_cn=(
            "{name}您好，感谢您的反馈，您的见解非常深刻。我们诚邀您加入品牌大使（KOC）计划。"
            "您将获得：1. 新品免费内测；2. 与我们的研发师（KOE）直接对话；"
            "3. 官方专属身份标识。您愿意加入吗？"
        ),
        zh_tw=(
            "{name}您好，感謝您的回饋，您的見解非常深刻。我們誠邀您加入品牌大使（KOC）計畫。"
            "您將獲得：1. 新品免費內測；2. 與我們的研發師（KOE）直接對話；"
            "3. 官方專屬身份標識。您願意加入嗎？"
        ),
    ),
    TaskKind.DETRACTOR_FOLLOW_UP: Script(
        en=(
            "Hi {name}, I read your feedback and I am sorry we let you down. Could you tell me "
            "more about what happened? I want to understand it and get it fixed, and I will "
            "come back to you with what we changed."
        ),
        zh_cn=(
            "{name}您好，我看到了您的反馈，很抱歉让您失望了。能和我多说说发生了什么吗？"
            "我想弄清楚问题并尽快解决，改进之后我会第一时间回复您。"
        ),
        zh_tw=(
            "{name}您好，我看到了您的回饋，很抱歉讓您失望了。能和我多說說發生了什麼嗎？"
            "我想弄清楚問題並儘快解決，改進之後我會第一時間回覆您。"
        ),
    ),
    TaskKind.OTHER: Script(
        en="Hi {name}, thank you for your feedback. Do you have a few minutes to talk?",
        zh_cn="{name}您好，感谢您的反馈。方便占用您几分钟聊聊吗？",
        zh_tw="{name}您好，感謝您的回饋。方便佔用您幾分鐘聊聊嗎？",
    ),
}


def default_script(kind: str, locale: str, name: str | None) -> str:
    """The shipped script for `kind` in the customer's locale (English when unknown)."""
    script = SCRIPTS.get(kind) or SCRIPTS[TaskKind.OTHER]
    fallback = {"zh-CN": "顾客", "zh-TW": "顧客"}.get(locale, "there")
    return script.for_locale(locale).format(name=(name or "").strip() or fallback)
