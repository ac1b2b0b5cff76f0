"""The activation funnel's rules (seed 000's four levels), in one place: which playbook step
belongs to which level, and what eligible / asked / clicked / acted mean for each level, with
the reason shown beside the figures (English, 简体; 繁體 converted when shown). Pure: no I/O.

A level is recognised by what a step does, not by its id, so an edited or new playbook
counts too:
  L1 easy ask       a `send_message` step with a review template (review_ask)
  L2 referral       an `issue_referral_code` step (eligible), then `send_message` referral_invite
  L3 UGC challenge  an `invite_challenge` step (eligible), then `send_message` ugc_invite
  L4 ambassador     a `create_task` step of kind ambassador_invite (a person asks 1:1)

The funnel is a cohort: the enrolments whose level step ran in the period, and everything that
happened to them afterwards (whenever it happened), so each stage is part of the one before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import zhconv

LEVELS = ("L1", "L2", "L3", "L4")
STAGES = ("eligible", "asked", "clicked", "acted")
# Drill-down stages: the funnel's, the asks that were not sent, and (L3) the featured entries.
DRILL_STAGES = (*STAGES, "skipped", "featured")
REVIEW_TEMPLATES = ("review_ask",)
REFERRAL_TEMPLATES = ("referral_invite",)
UGC_TEMPLATES = ("ugc_invite",)
AMBASSADOR_TASK = "ambassador_invite"
POSITIVE_TASK_OUTCOMES = ("accepted",)  # domain.tasks.Outcome.ACCEPTED
# Message statuses that mean "handed to the channel" (domain.messaging: sent, clicked).
DELIVERED_STATUSES = ("sent", "clicked")
REJECTED_REFERRAL = "rejected"

ENTRY, ASK = "entry", "ask"

_NAMES: dict[str, tuple[str, str]] = {
    "L1": ("L1 easy ask (review)", "L1 轻度邀请（评价）"),
    "L2": ("L2 referral", "L2 推荐"),
    "L3": ("L3 UGC challenge", "L3 UGC 挑战赛"),
    "L4": ("L4 ambassador 1:1", "L4 品牌大使 1对1"),
}

# What each stage counts, per level: (English, 简体).
_MEANINGS: dict[str, dict[str, tuple[str, str]]] = {
    "L1": {
        "eligible": (
            "enrolments that reached a review-ask step",
            "进入评价邀请步骤的参与记录",
        ),
        "asked": (
            "the review request was queued or sent (not skipped)",
            "评价邀请已排队或已发送（未被跳过）",
        ),
        "clicked": (
            "a tracked link to a review site in it was clicked",
            "点击了邀请中的评价网站跟踪链接",
        ),
        "acted": (
            "not measurable: the review sites do not tell us who wrote a review, so the "
            "click is the last step we can see",
            "无法衡量：评价网站不告知谁写了评价，点击是我们能看到的最后一步",
        ),
    },
    "L2": {
        "eligible": (
            "enrolments given their own referral code",
            "获得专属推荐码的参与记录",
        ),
        "asked": (
            "the referral invitation was queued or sent (not skipped)",
            "推荐邀请已排队或已发送（未被跳过）",
        ),
        "clicked": (
            "a tracked link in the invitation was clicked",
            "点击了推荐邀请中的跟踪链接",
        ),
        "acted": (
            "a friend signed up through them after the ask (a referral not rejected)",
            "邀请后有好友通过其推荐注册（推荐未被拒绝）",
        ),
    },
    "L3": {
        "eligible": (
            "enrolments invited to the #hashtag# challenge",
            "受邀参加 #话题# 挑战赛的参与记录",
        ),
        "asked": (
            "the challenge invitation message was queued or sent (not skipped)",
            "挑战赛邀请消息已排队或已发送（未被跳过）",
        ),
        "clicked": (
            "a tracked link in the invitation was clicked",
            "点击了挑战赛邀请中的跟踪链接",
        ),
        "acted": (
            "an entry was submitted (featured entries shown too)",
            "提交了作品（另显示精选数）",
        ),
    },
    "L4": {
        "eligible": (
            "enrolments handed to a community manager (ambassador task)",
            "转交社群经理的参与记录（品牌大使任务）",
        ),
        "asked": (
            "the manager recorded an outcome: the 1:1 invitation was made",
            "社群经理已记录结果：已进行 1对1 邀请",
        ),
        "clicked": (
            "not applicable: a person asks, there is no link",
            "不适用：由人工邀请，没有链接",
        ),
        "acted": (
            "the task is done with a positive outcome (accepted)",
            "任务已完成且结果为接受",
        ),
    },
}
# Stages a level cannot measure: shown as "—", never as 0.
UNMEASURED: dict[str, tuple[str, ...]] = {"L1": ("acted",), "L4": ("clicked",)}

SKIP_NOTE = (
    "asks not sent, by reason (consent, unsubscribed, frequency cap …); quiet hours only delay",
    "未发送的邀请及原因（未同意、已退订、频次上限……）；免打扰时段只会推迟发送",
)


@dataclass(frozen=True)
class StepRole:
    level: str
    role: str  # ENTRY (counts as eligible) or ASK (the message or task that asks)


def roles_of_step(action: str, params: Mapping[str, Any]) -> list[StepRole]:
    """The level(s) a playbook step belongs to and its role there ([] for other steps)."""
    if action == "send_message":
        template = params.get("template")
        if template in REVIEW_TEMPLATES:
            return [StepRole("L1", ENTRY), StepRole("L1", ASK)]
        if template in REFERRAL_TEMPLATES:
            return [StepRole("L2", ASK)]
        if template in UGC_TEMPLATES:
            return [StepRole("L3", ASK)]
    if action == "issue_referral_code":
        return [StepRole("L2", ENTRY)]
    if action == "invite_challenge":
        return [StepRole("L3", ENTRY)]
    if action == "create_task" and params.get("kind") == AMBASSADOR_TASK:
        return [StepRole("L4", ENTRY), StepRole("L4", ASK)]
    return []


@dataclass(frozen=True)
class LevelSteps:
    """One level in one playbook version: the step ids that make it eligible and that ask."""

    level: str
    entry: tuple[str, ...]
    ask: tuple[str, ...]


def level_steps(steps: list[tuple[str, str, Mapping[str, Any]]]) -> list[LevelSteps]:
    """Per level present in a playbook version (steps as (id, action, params)): its entry and
    ask steps. A level with an ask step but no entry step is entered at the ask."""
    entry: dict[str, list[str]] = {}
    ask: dict[str, list[str]] = {}
    for step_id, action, params in steps:
        for role in roles_of_step(action, params):
            (entry if role.role == ENTRY else ask).setdefault(role.level, []).append(step_id)
    found = []
    for level in LEVELS:
        if level not in entry and level not in ask:
            continue
        asks = tuple(ask.get(level, ()))
        found.append(LevelSteps(level, tuple(entry.get(level, ())) or asks, asks))
    return found


def _zh(text: str, locale: str) -> str:
    return zhconv.convert(text, "zh-tw") if locale == "zh-TW" else text


def said(pair: tuple[str, str], locale: str) -> str:
    """One (English, 简体) text in a locale: en, zh-CN or zh-TW."""
    return pair[0] if not locale.startswith("zh") else _zh(pair[1], locale)


def level_name(level: str, locale: str = "en") -> str:
    return said(_NAMES[level], locale)


def meaning(level: str, stage: str, locale: str = "en") -> str:
    return said(_MEANINGS[level][stage], locale)


def bilingual(pair: tuple[str, str]) -> str:
    return f"{pair[0]} / {pair[1]}"


def definitions() -> dict[str, dict[str, str]]:
    """Every level's stage meanings as "English / 中文" (the panel's summary and the API)."""
    return {
        level: {stage: bilingual(_MEANINGS[level][stage]) for stage in STAGES} for level in LEVELS
    }


def rate(part: int | None, whole: int | None) -> float | None:
    """part / whole rounded, None when either is unmeasured or there is nothing to divide."""
    if part is None or not whole:
        return None
    return round(part / whole, 4)


def funnel_row(level: str, counts: Mapping[str, int]) -> dict[str, Any]:
    """A level's row: the counts (None for a stage the level cannot measure) and the rates
    asked/eligible, clicked/asked, acted/asked."""
    figures: dict[str, Any] = {
        s: (None if s in UNMEASURED.get(level, ()) else int(counts.get(s, 0))) for s in STAGES
    }
    return {
        "level": level,
        "name": bilingual(_NAMES[level]),
        **figures,
        "skipped": int(counts.get("skipped", 0)),
        "featured": int(counts.get("featured", 0)) if level == "L3" else None,
        "ask_rate": rate(figures["asked"], figures["eligible"]),
        "click_rate": rate(figures["clicked"], figures["asked"]),
        "act_rate": rate(figures["acted"], figures["asked"]),
    }


def skip_reason_code(stored: str | None) -> str:
    """The reason code of a skipped ask ("no_consent", "frequency_cap" …; "" if none)."""
    return (stored or "").split(":", 1)[0].strip()


# Short words for why an ask was skipped (domain.messaging's reason codes); quiet hours are
# not among them: they delay a message, never skip it.
_SKIP_LABELS: dict[str, tuple[str, str]] = {
    "no_consent": ("no marketing consent", "未同意接收营销信息"),
    "unsubscribed": ("unsubscribed", "已退订"),
    "suppressed": ("on the suppression list", "在屏蔽名单中"),
    "frequency_cap": ("frequency cap reached", "达到邀请频次上限"),
    "no_address": ("no address for the channel", "缺少该渠道的联系方式"),
    "render_error": ("template could not be rendered", "模板渲染失败"),
}


def skip_label(code: str, locale: str = "en") -> str:
    """A skip reason code in words (the code itself when it is not a known one)."""
    pair = _SKIP_LABELS.get(code)
    return said(pair, locale) if pair else (code or "—")
