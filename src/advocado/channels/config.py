"""Messaging settings, read from the environment in one place. A bad value is an error that
names the variable and what it expects."""

from __future__ import annotations

import os
from dataclasses import dataclass
from email.utils import parseaddr

from advocado.domain.messaging import QuietHours


@dataclass(frozen=True)
class ReviewLink:
    name: str
    url: str


DEFAULT_REVIEW_LINKS = "App Store=https://apps.apple.com/app/id0000000000?action=write-review"


@dataclass(frozen=True)
class MessagingConfig:
    smtp_url: str
    mail_from: str
    sender_identity: str
    webhook_url: str | None
    webhook_secret: str | None
    base_url: str
    ask_cap: int
    ask_window_days: int
    quiet_hours: QuietHours
    review_links: tuple[ReviewLink, ...]
    max_attempts: int
    claim_seconds: int
    send_timeout: float

    @property
    def mail_domain(self) -> str:
        address = parseaddr(self.mail_from)[1]
        return address.rpartition("@")[2] or "localhost"


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise ValueError(f"{name}={raw!r}: must be at least {minimum}")
    return value


def parse_review_links(
    text: str, *, source: str = "ADVOCADO_REVIEW_LINKS"
) -> tuple[ReviewLink, ...]:
    """`App Store=https://…;G2=https://…;大众点评=https://…` (`;` or new lines between)."""
    links = []
    for number, part in enumerate(text.replace("\n", ";").split(";"), start=1):
        part = part.strip()
        if not part:
            continue
        name, sep, url = part.partition("=")
        if not sep or not name.strip() or not url.strip().startswith(("https://", "http://")):
            raise ValueError(f"{source}, entry {number} ({part!r}): expected NAME=https://URL")
        links.append(ReviewLink(name.strip(), url.strip()))
    return tuple(links)


def messaging_config() -> MessagingConfig:
    mail_from = os.environ.get("ADVOCADO_MAIL_FROM", "Advocado <no-reply@localhost>")
    if "@" not in parseaddr(mail_from)[1]:
        raise ValueError(f"ADVOCADO_MAIL_FROM={mail_from!r}: expected 'Brand <address@domain>'")
    quiet = os.environ.get("ADVOCADO_QUIET_HOURS", "21:00-09:00")
    try:
        quiet_hours = QuietHours.parse(quiet)
    except ValueError as error:
        raise ValueError(f"ADVOCADO_QUIET_HOURS: {error}") from None
    return MessagingConfig(
        smtp_url=os.environ.get("ADVOCADO_SMTP_URL", "smtp://127.0.0.1:25"),
        mail_from=mail_from,
        sender_identity=os.environ.get("ADVOCADO_SENDER_IDENTITY")
        or (parseaddr(mail_from)[0] or parseaddr(mail_from)[1]),
        webhook_url=os.environ.get("ADVOCADO_MESSAGE_WEBHOOK_URL") or None,
        webhook_secret=os.environ.get("ADVOCADO_MESSAGE_WEBHOOK_SECRET") or None,
        base_url=os.environ.get("ADVOCADO_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        ask_cap=_int("ADVOCADO_ASK_CAP", 2),
        ask_window_days=_int("ADVOCADO_ASK_WINDOW_DAYS", 30, minimum=1),
        quiet_hours=quiet_hours,
        review_links=parse_review_links(
            os.environ.get("ADVOCADO_REVIEW_LINKS", DEFAULT_REVIEW_LINKS)
        ),
        max_attempts=_int("ADVOCADO_MESSAGE_MAX_ATTEMPTS", 5, minimum=1),
        claim_seconds=_int("ADVOCADO_MESSAGE_CLAIM_SECONDS", 300, minimum=1),
        send_timeout=float(_int("ADVOCADO_SEND_TIMEOUT", 30, minimum=1)),
    )
