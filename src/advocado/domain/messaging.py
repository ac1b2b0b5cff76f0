"""Messaging rules, no I/O: whether a message may go, when, and what its statuses mean.

A skip or failure carries a reason code with text in English, 简体 and 繁體 (REASONS), so the
log can answer "why didn't X get it" in the reader's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import zhconv

# Statuses. `claimed`: taken by a worker, not yet handed to a channel (a lapsed claim goes back
# to `queued`: nothing was sent). `sending`: being handed to the channel right now; a lapsed
# `sending` becomes `uncertain` (the channel may or may not have it), never resent on its own.
QUEUED, SKIPPED, CLAIMED, SENDING = "queued", "skipped", "claimed", "sending"
SENT, CLICKED, BOUNCED, UNCERTAIN, DEAD = "sent", "clicked", "bounced", "uncertain", "dead"
FAILED = "failed"  # an attempt that failed and will be retried (history only)
STATUSES = (QUEUED, SKIPPED, CLAIMED, SENDING, SENT, CLICKED, BOUNCED, UNCERTAIN, DEAD)
# What counts as an "ask" for the frequency cap and for last_asked_at: a marketing message that
# was, is being, or will be delivered.
ASK_STATUSES = (QUEUED, CLAIMED, SENDING, SENT, CLICKED, UNCERTAIN)
# An operator may retry these (a resend is then their decision, see services/messaging.py).
RETRYABLE = (DEAD, UNCERTAIN, BOUNCED)

CHANNELS = ("email", "webhook", "sms", "wecom", "wechat")  # all but email go through the webhook
LOCALES = ("en", "zh-CN", "zh-TW")

REASONS: dict[str, tuple[str, str]] = {
    # code: (English, 简体); 繁體 is converted from 简体 when shown (zhconv)
    "no_consent": (
        "the customer has not consented to marketing messages",
        "客户未同意接收营销信息",
    ),
    "unsubscribed": (
        "the customer unsubscribed from marketing messages",
        "客户已退订营销信息",
    ),
    "suppressed": (
        "the address or customer is on the suppression list",
        "该地址或客户在屏蔽名单中",
    ),
    "frequency_cap": (
        "already asked {count} times in the last {days} days (cap {cap})",
        "近 {days} 天已邀请 {count} 次（上限 {cap} 次）",
    ),
    "no_address": (
        "the customer has no {what} for this channel",
        "客户没有该渠道所需的{what}",
    ),
    "render_error": ("the template could not be rendered", "模板渲染失败"),
    "bounced": ("the receiving server refused it", "对方服务器拒收"),
    "send_failed": ("sending failed, will retry", "发送失败，将重试"),
    "max_attempts": (
        "gave up after {attempts} attempts",
        "已尝试 {attempts} 次，放弃",
    ),
    "lease_lapsed": (
        "the sending process stopped while handing it to the channel: it may or may not "
        "have been sent, so it is not resent automatically",
        "发送进程在交付渠道时中断：可能已发出也可能没有，因此不会自动重发",
    ),
}


def reason(code: str, detail: str | None = None, **values: object) -> str:
    """The stored form of a reason: `code: English text / 中文` (+ `: detail`)."""
    en, zh = REASONS[code]
    text = f"{code}: {en.format(**values)} / {zh.format(**values)}"
    return f"{text} ({detail})" if detail else text


def reason_code(stored: str | None) -> str | None:
    return stored.split(":", 1)[0] if stored else None


def explain(stored: str | None, locale: str) -> str | None:
    """A stored reason in one locale (for the console)."""
    if not stored or locale == "en" or " / " not in stored:
        return stored
    code = reason_code(stored)
    chinese = stored.split(" / ", 1)[1]
    if locale == "zh-TW":
        chinese = zhconv.convert(chinese, "zh-tw")
    return f"{code}: {chinese}"


@dataclass(frozen=True)
class Recipient:
    """What the send decision looks at about a customer."""

    consent: bool
    unsubscribed: bool
    suppressed: bool
    address: str | None


def address_kind(channel: str) -> str:
    return "email" if channel == "email" else "phone"


def skip_reason(
    recipient: Recipient, *, channel: str, marketing: bool, recent_asks: int, cap: int, days: int
) -> str | None:
    """Why this message must not go, or None. Transactional messages only need an address."""
    if not recipient.address:
        return reason("no_address", what=address_kind(channel))
    if not marketing:
        return None
    if recipient.unsubscribed:
        return reason("unsubscribed")
    if recipient.suppressed:
        return reason("suppressed")
    if not recipient.consent:
        return reason("no_consent")
    if recent_asks >= cap:
        return reason("frequency_cap", count=recent_asks, days=days, cap=cap)
    return None


@dataclass(frozen=True)
class QuietHours:
    """Local times between which no marketing message is delivered; may span midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """`21:00-09:00`. An empty string or `off` means none (start == end)."""
        text = text.strip()
        if text.lower() in ("", "off", "none"):
            return cls(time(0), time(0))
        try:
            start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
        except ValueError:
            raise ValueError(
                f"quiet hours {text!r}: expected HH:MM-HH:MM such as 21:00-09:00"
            ) from None
        return cls(start, end)

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def next_allowed(moment: datetime, *, timezone: str | None, quiet: QuietHours) -> datetime:
    """`moment` if it is outside quiet hours in that timezone, else the end of the quiet
    window (local time), in UTC. An unknown timezone is taken as UTC."""
    tz = zone(timezone)
    local = moment.astimezone(tz)
    wall = local.time().replace(tzinfo=None)
    if not quiet.contains(wall):
        return moment
    day = local.date()
    if quiet.start > quiet.end and wall >= quiet.start:
        day += timedelta(days=1)  # 22:30 in a 21:00-09:00 window: tomorrow 09:00
    # a wall time that does not exist (DST gap) is read with the offset before the gap
    return datetime.combine(day, quiet.end, tzinfo=tz).astimezone(moment.tzinfo)


def backoff(attempts: int, *, base_seconds: int = 60, cap_seconds: int = 6 * 3600) -> timedelta:
    """Wait before attempt `attempts + 1`: 1 min, 2, 4, 8 … at most 6 h."""
    return timedelta(seconds=min(cap_seconds, base_seconds * 2 ** max(0, attempts - 1)))


def pick_locale(customer_locale: str | None) -> str:
    """The customer's locale among the shipped ones; zh-Hant/zh-HK/zh-MO read zh-TW, other
    Chinese zh-CN; everything else English."""
    tag = (customer_locale or "").replace("_", "-").strip().lower()
    if tag in ("zh-tw", "zh-hk", "zh-mo", "zh-hant") or tag.startswith("zh-hant"):
        return "zh-TW"
    if tag.startswith("zh"):
        return "zh-CN"
    return "en"
