"""The weekly summary email: last ISO week's figures against the week before, sent once a week
to the console users who chose it (users.weekly_summary), in their language (users.locale).

When: one installation setting (`weekly_summary.schedule`: day of week, hour, brand time
zone). From that moment until the end of the brand's week, the worker's tick (services.
playbooks._periodic) sends the report of the week before; `advocado report weekly` sends or
previews any week by hand.

Exactly once per (user, ISO week), by the unique key on the send row (weekly_reports): the row
is claimed (`sending`, with a lease) and committed before the SMTP conversation, so a second
worker finds it taken. The outcome follows the channel's (channels/__init__.py): `sent`;
`retry` (certainly not accepted: sent again on a later tick); `bounced`; `uncertain` (cut off
after the content went, or the worker died mid-send: the lease lapses) is never resent
automatically. These are internal reports, not marketing: no consent or cap rules, but never
to a disabled user.

The figures come from the dashboard's selectors (services.dashboard panels), read only."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from advocado import clock
from advocado.channels import Outgoing
from advocado.channels.config import messaging_config
from advocado.channels.email import SmtpChannel
from advocado.channels.weekly_email import LOCALES, render
from advocado.domain.dashboard import Filters
from advocado.domain.records import FieldError
from advocado.services import audit, dashboard
from advocado.services.users import normal_email
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import Setting, User, WeeklyReport

SCHEDULE_SETTING = "weekly_summary.schedule"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SENDING, SENT, RETRY, BOUNCED, UNCERTAIN = "sending", "sent", "retry", "bounced", "uncertain"
MAX_ATTEMPTS = 5
PERSONAS = ("emotional", "rational", "neutral")
# Message ids of weekly reports in Message-ID headers: apart from customer messages' ids.
MESSAGE_ID_OFFSET = 10**12


@dataclass(frozen=True)
class Schedule:
    weekday: int = 0  # Monday
    hour: int = 9
    timezone: str = "UTC"

    def as_dict(self) -> dict[str, Any]:
        return {"weekday": self.weekday, "day": DAYS[self.weekday], "hour": self.hour,
                "timezone": self.timezone}  # fmt: skip


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError("timezone", f"{name!r} is not a time zone (e.g. Asia/Shanghai)") from None


def parse_schedule(day: str | int, hour: str | int, timezone: str) -> Schedule:
    """FieldError naming the field when a value is wrong."""
    raw = str(day).strip().lower()[:3]
    if str(day).strip().isdigit() and 0 <= int(day) <= 6:
        weekday = int(day)
    elif raw in DAYS:
        weekday = DAYS.index(raw)
    else:
        raise FieldError("day", f"{day!r}: one of {', '.join(DAYS)} (or 0-6, Monday = 0)")
    try:
        number = int(str(hour).strip())
    except ValueError:
        number = -1
    if not 0 <= number <= 23:
        raise FieldError("hour", f"{hour!r}: a whole hour 0-23")
    zone = (timezone or "UTC").strip()
    _zone(zone)
    return Schedule(weekday, number, zone)


def schedule(session: Session) -> Schedule:
    raw = session.scalar(select(Setting.value).where(Setting.key == SCHEDULE_SETTING))
    if not raw:
        return Schedule()
    found = json.loads(raw)
    return Schedule(int(found["weekday"]), int(found["hour"]), str(found["timezone"]))


def schedule_of(engine: Engine) -> Schedule:
    with read_only(engine) as session:
        return schedule(session)


def set_schedule(session: Session, *, day: str | int, hour: str | int, timezone: str,
                 actor: str) -> Schedule:  # fmt: skip
    """Set when the summary goes out (audited; Action.MANAGE_SETTINGS)."""
    new = parse_schedule(day, hour, timezone)
    old = schedule(session)
    row = session.get(Setting, SCHEDULE_SETTING)
    value = json.dumps({"weekday": new.weekday, "hour": new.hour, "timezone": new.timezone})
    if row is None:
        session.add(Setting(key=SCHEDULE_SETTING, value=value))
    else:
        row.value = value
    if old != new:
        audit.record(session, actor=actor, entity="setting", entity_id=SCHEDULE_SETTING,
                     action="update", before=old.as_dict(), after=new.as_dict())  # fmt: skip
    return new


def set_preferences(
    session: Session, *, email: str, weekly_summary: bool, locale: str, actor: str
) -> User:
    """A user's choice to receive the summary, and its language (audited)."""
    if locale not in LOCALES:
        raise FieldError("locale", f"{locale!r}: one of {', '.join(LOCALES)}")
    user = session.scalar(select(User).where(User.email == normal_email(email)))
    if user is None:
        raise FieldError("email", f"no user {email!r} / 没有该用户")
    before = {"weekly_summary": user.weekly_summary, "locale": user.locale}
    user.weekly_summary, user.locale = weekly_summary, locale
    after = {"weekly_summary": weekly_summary, "locale": locale}
    if before != after:
        audit.record(session, actor=actor, entity="user", entity_id=user.email,
                     action="weekly_summary", before=before, after=after)  # fmt: skip
    return user


# --- weeks ----------------------------------------------------------------------------------


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_monday(text: str) -> date:
    """The Monday of "2026-W47"; FieldError("week") otherwise."""
    try:
        year, week = text.strip().upper().split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        raise FieldError("week", f"{text!r}: an ISO week like 2026-W47") from None


def due_week(now: datetime, plan: Schedule) -> str | None:
    """The week whose report is due at `now`: the brand's previous ISO week, from this week's
    send moment (day, hour, brand time zone) to the end of the brand's week; else None."""
    local = now.astimezone(_zone(plan.timezone))
    monday = local.date() - timedelta(days=local.weekday())
    moment = datetime.combine(monday + timedelta(days=plan.weekday), datetime.min.time())
    moment = moment.replace(hour=plan.hour, tzinfo=local.tzinfo)
    if local < moment:
        return None
    return iso_week(monday - timedelta(days=7))


# --- figures --------------------------------------------------------------------------------


def _week_figures(session: Session, monday: date) -> dict[str, Any]:
    f = Filters(start=monday, end=monday + timedelta(days=6))
    nps = dashboard.nps_over_time(session, f).summary["overall"]
    by = {
        (r["dimension"], r["value"]): r["promoters"] for r in dashboard.promoters(session, f).rows
    }
    funnel = dashboard.referral_funnel(session, f)
    counts = {r["stage"]: r["count"] for r in funnel.rows}
    money = funnel.summary
    return {
        "nps": nps,
        "personas": {p: int(by.get(("persona", p), 0)) for p in PERSONAS},
        "funnel": counts,
        "money": {
            "currency": money["currency"],
            "revenue": money["revenue"],
            "rewards_cost": money["rewards_cost"],
            "roi": money.get("roi"),
        },  # fmt: skip
    }


def figures(session: Session, week: str) -> dict[str, Any]:
    """Last week's and the week before's figures, and plan vs actual of plans active in it."""
    monday = week_monday(week)
    before = monday - timedelta(days=7)
    plan = dashboard.plan_vs_actual(session, Filters(start=monday, end=monday + timedelta(6)))
    return {
        "week": week,
        "start": monday.isoformat(),
        "end": (monday + timedelta(days=6)).isoformat(),
        "previous_week": iso_week(before),
        "current": _week_figures(session, monday),
        "previous": _week_figures(session, before),
        "plan": plan.rows,
    }


def dashboard_url(base_url: str, week: str) -> str:
    monday = week_monday(week)
    query = urlencode({"from": monday.isoformat(), "to": (monday + timedelta(6)).isoformat()})
    return f"{base_url}/dashboard?{query}"


# --- sending --------------------------------------------------------------------------------


@dataclass
class WeeklyRun:
    week: str | None
    recipients: int = 0
    sent: int = 0
    already: int = 0  # a row for (user, week) existed: sent, in flight or uncertain
    retry: int = 0
    bounced: int = 0
    uncertain: int = 0
    previews: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"week": self.week, "recipients": self.recipients, "sent": self.sent,
                "already": self.already, "retry": self.retry, "bounced": self.bounced,
                "uncertain": self.uncertain, "previews": self.previews}  # fmt: skip


def _recipients(session: Session, to: str | None) -> list[User]:
    query = select(User).where(User.disabled_at.is_(None)).order_by(User.id)
    if to:
        found = list(session.scalars(query.where(User.email == normal_email(to))))
        if not found:
            raise FieldError("to", f"{to!r} is not an enabled console user / 不是启用的控制台用户")
        return found
    return list(session.scalars(query.where(User.weekly_summary.is_(True))))


def _lapsed_to_uncertain(engine: Engine, now: datetime) -> int:
    """A send whose worker died mid-SMTP: it may have been delivered, so never resent."""
    with read_only(engine) as session:  # every tick asks: a write only when there is one
        lapsed = session.scalar(
            select(WeeklyReport.id)
            .where(WeeklyReport.status == SENDING, WeeklyReport.lease_until < now)
            .limit(1)
        )
    if lapsed is None:
        return 0
    with unit_of_work(engine) as session:
        done = session.execute(
            update(WeeklyReport)
            .where(WeeklyReport.status == SENDING, WeeklyReport.lease_until < now)
            .values(status=UNCERTAIN, lease_until=None,
                    detail="the worker stopped during the send (lease lapsed): it may have "
                    "been delivered, so it is not resent / 发送中断，可能已送达，不自动重发")
        )  # fmt: skip
        return int(done.rowcount or 0)


def _claim(engine: Engine, user: User, week: str, now: datetime, lease: int) -> int | None:
    """The send row, claimed by us (committed before any SMTP), or None if someone has it."""
    with unit_of_work(engine) as session:
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        row_id = session.scalar(
            dialect.insert(WeeklyReport)
            .values(user_id=user.id, week=week, email=user.email, locale=user.locale,
                    status=SENDING, attempts=1, lease_until=now + timedelta(seconds=lease),
                    created_at=now)
            .on_conflict_do_nothing()
            .returning(WeeklyReport.id)
        )  # fmt: skip
        if row_id is not None:
            return row_id
        # a send certainly not accepted before (status retry) is the only one taken again
        return session.scalar(
            update(WeeklyReport)
            .where(WeeklyReport.user_id == user.id, WeeklyReport.week == week,
                   WeeklyReport.status == RETRY, WeeklyReport.attempts < MAX_ATTEMPTS)
            .values(status=SENDING, attempts=WeeklyReport.attempts + 1,
                    lease_until=now + timedelta(seconds=lease))
            .returning(WeeklyReport.id)
        )  # fmt: skip


def send_weekly(
    engine: Engine,
    *,
    now: datetime | None = None,
    week: str | None = None,
    to: str | None = None,
    dry_run: bool = False,
) -> WeeklyRun:
    """Send the weekly summary: of `week` (default: the one due now by the schedule; nothing
    if none is due) to the users who chose it (or only the console user `to`), once each.
    `dry_run` renders the emails (previews) and writes and sends nothing."""
    now = now or clock.now()
    if not dry_run:
        _lapsed_to_uncertain(engine, now)
    with read_only(engine) as session:
        if week is None:
            week = due_week(now, schedule(session))
            if week is None:
                return WeeklyRun(None)
        week_monday(week)
        users = _recipients(session, to)
        run = WeeklyRun(week, recipients=len(users))
        if not dry_run:
            # the worker asks every minute of the week: figures only when someone is waiting
            done = {
                user_id
                for user_id, status in session.execute(
                    select(WeeklyReport.user_id, WeeklyReport.status).where(
                        WeeklyReport.week == week
                    )
                )
                if status != RETRY
            }
            run.already = sum(u.id in done for u in users)
            users = [u for u in users if u.id not in done]
        if not users:
            return run
        found = figures(session, week)
    config = messaging_config()
    link = dashboard_url(config.base_url, week)
    channel: SmtpChannel | None = None
    try:
        for user in users:
            subject, text, html = render(found, locale=user.locale, email=user.email,
                                         dashboard_url=link)  # fmt: skip
            if dry_run:
                run.previews.append({"to": user.email, "locale": user.locale,
                                     "subject": subject, "text": text})  # fmt: skip
                continue
            lease = int(config.send_timeout * 3 + 30)
            row_id = _claim(engine, user, week, now, lease)
            if row_id is None:
                run.already += 1
                continue
            if channel is None:
                channel = SmtpChannel(
                    config.smtp_url,
                    mail_from=config.mail_from,
                    domain=config.mail_domain,
                    timeout=config.send_timeout,
                )
            outgoing = Outgoing(
                message_id=MESSAGE_ID_OFFSET + row_id, cause_key=f"weekly:{user.id}:{week}",
                channel="email", to=user.email, to_name=None, locale=user.locale,
                subject=subject, text=text, html=html, unsubscribe_url=None,
                template="weekly_summary", customer_external_id="", attempt=1,
            )  # fmt: skip
            outcome = channel.send(outgoing)
            status = {"sent": SENT, "retry": RETRY, "bounced": BOUNCED}.get(outcome.kind, UNCERTAIN)
            with unit_of_work(engine) as session:
                session.execute(
                    update(WeeklyReport)
                    .where(WeeklyReport.id == row_id)
                    .values(status=status, lease_until=None, detail=outcome.detail[:2000],
                            sent_at=clock.now() if status == SENT else None)
                )  # fmt: skip
            setattr(run, status, getattr(run, status) + 1)
    finally:
        if channel is not None:
            channel.close()
    return run


def due_now(engine: Engine, *, now: datetime) -> int:
    """For the worker's tick: send what is due (cheap when nothing is). Returns emails sent.
    ADVOCADO_WEEKLY_SUMMARY=0 turns it off."""
    if os.environ.get("ADVOCADO_WEEKLY_SUMMARY", "1") == "0":
        return 0
    return send_weekly(engine, now=now).sent


def sends(session: Session, *, week: str | None = None) -> list[WeeklyReport]:
    """The send rows, newest first (for the users page and tests)."""
    query = select(WeeklyReport).order_by(WeeklyReport.id.desc())
    if week:
        query = query.where(WeeklyReport.week == week)
    return list(session.scalars(query))
