"""Messages: queued in their cause's transaction, delivered by workers, exactly once.

Exactly once rests on two things:
- a message is a row unique on `cause_key` (the effect's key): enqueueing the same cause again,
  racing or retried, finds the first row ("duplicate") and queues nothing;
- delivery moves a row queued -> claimed -> sending -> sent, each step committed, and only the
  worker holding the lease may move it on:
  * `claimed` (leased in a batch, not yet handed to a channel): a lapsed claim goes back to
    `queued`, since nothing left the building;
  * `sending` is committed just before the channel is called. If the process dies there
    (kill -9, power), nobody knows whether the SMTP server or gateway took it, so a lapsed
    `sending` becomes `uncertain`, shown to an operator with a retry action, and is never
    resent automatically: a customer asked twice is worse than an operator's look (and the
    Message-ID / Idempotency-Key we sent lets them check the server's log).
  A channel failure that certainly did not deliver (refused before DATA, 4xx, connection
  refused) goes back to `queued` with exponential backoff; after max attempts it is `dead`
  (the dead-letter list, with retry). SMTP 5xx is `bounced` (and the address suppressed).

Marketing messages need consent and no suppression, obey the frequency cap (asks per customer
per rolling window) and quiet hours in the customer's timezone; consent and suppression are
checked again at delivery, so an unsubscribe between the two is honoured. A skip is a row too
(status `skipped`, with its reason), so "why didn't X get it" has an answer.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from advocado import clock
from advocado.channels import Outcome, Outgoing
from advocado.channels import render as templates
from advocado.channels.config import MessagingConfig, messaging_config
from advocado.domain import activation as activation_rules
from advocado.domain import messaging as rules
from advocado.services import activation_aggregates
from advocado.services.clicks import stored_secret
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import (
    Customer,
    Message,
    MessageEvent,
    MessageLink,
    MessageTemplate,
    ReferralNotice,
    Suppression,
)

LINK_SECRET = "message_link_secret"
WEBHOOK_SECRET = "message_webhook_secret"
REFERRAL_NOTICE = "referral_notice"


class MessagingError(ValueError):
    """Bad input to a messaging use case; the text starts with the field, then why."""

    @property
    def field(self) -> str:
        return str(self).split(" ", 1)[0].rstrip(":")


class MessageNotFound(MessagingError):
    """No message with that id."""


@dataclass(frozen=True)
class Queued:
    message_id: int | None  # None when skipped
    status: str  # "queued" | "skipped" | "duplicate"
    reason: str | None  # "code: English / 中文", e.g. "no_consent: …"


@dataclass
class DeliveryReport:
    notices_queued: int = 0
    recovered: int = 0  # lapsed claims put back in the queue
    uncertain: int = 0  # lapsed sends marked uncertain
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    retried: int = 0
    bounced: int = 0
    dead: int = 0
    lost: int = 0  # claims another worker took over (our lease lapsed)
    outcomes: list[tuple[int, str]] = field(default_factory=list)


def _dialect(session: Session) -> Any:
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


def normalise_phone(phone: str) -> str:
    return re.sub(r"[^\d+]", "", phone)


def _event(session: Session, message_id: int, status: str, detail: str | None, at: datetime):
    session.add(MessageEvent(message_id=message_id, status=status, detail=detail, at=at))


# --- enqueue ---------------------------------------------------------------------------------


def template_exists(session: Session, name: str) -> bool:
    if name in templates.shipped_names():
        return True
    found = session.scalar(select(MessageTemplate.id).where(MessageTemplate.name == name))
    return found is not None


def _address(customer: Customer, channel: str) -> str | None:
    if channel == "email":
        return (customer.email or "").strip() or None
    return normalise_phone(customer.phone or "") or None


def _suppression(session: Session, customer: Customer) -> tuple[bool, bool]:
    """(unsubscribed, suppressed) for this customer's id, email and phone."""
    keys = [and_(Suppression.kind == "customer", Suppression.value == str(customer.id))]
    if customer.email:
        keys.append(
            and_(Suppression.kind == "email", Suppression.value == customer.email.strip().lower())
        )
    if customer.phone:
        keys.append(
            and_(Suppression.kind == "phone", Suppression.value == normalise_phone(customer.phone))
        )
    reasons = session.scalars(select(Suppression.reason).where(or_(*keys))).all()
    unsubscribed = any(rules.reason_code(r) == "unsubscribed" for r in reasons)
    return unsubscribed, bool(reasons) and not unsubscribed


def recent_asks(session: Session, *, customer_id: int, due: datetime, days: int) -> int:
    return (
        session.scalar(
            select(func.count(Message.id)).where(
                Message.customer_id == customer_id,
                Message.marketing.is_(True),
                Message.status.in_(rules.ASK_STATUSES),
                Message.due_at > due - timedelta(days=days),
            )
        )
        or 0
    )


def _recipient(session: Session, customer: Customer, channel: str) -> rules.Recipient:
    unsubscribed, suppressed = _suppression(session, customer)
    return rules.Recipient(
        consent=bool(customer.marketing_consent),
        unsubscribed=unsubscribed,
        suppressed=suppressed,
        address=_address(customer, channel),
    )


def enqueue_message(
    session: Session,
    *,
    customer_id: int,
    template: str,
    channel: str = "email",
    cause_key: str,
    context: Mapping[str, Any],
    marketing: bool = True,
    not_before: datetime | None = None,
    config: MessagingConfig | None = None,
) -> Queued:
    """Queue one message in the caller's transaction (outbox); see the module's docstring."""
    if not cause_key or len(cause_key) > 250:
        raise MessagingError("cause_key: required, at most 250 characters")
    if channel not in rules.CHANNELS:
        raise MessagingError(f"channel {channel!r}: expected one of {', '.join(rules.CHANNELS)}")
    if not_before is not None and not_before.tzinfo is None:
        raise MessagingError("not_before: must be timezone-aware")
    existing = session.execute(
        select(Message.id, Message.status).where(Message.cause_key == cause_key)
    ).first()
    if existing is not None:
        return Queued(existing.id, "duplicate", None)
    if not template_exists(session, template):
        raise MessagingError(f"template {template!r}: no such template")
    # Lock the customer (PostgreSQL) so two causes racing for one customer count each other
    # against the cap; SQLite's single writer (BEGIN IMMEDIATE) already serialises them.
    customer = session.scalars(
        select(Customer).where(Customer.id == customer_id).with_for_update()
    ).first()
    if customer is None:
        raise MessagingError(f"customer_id {customer_id}: no such customer")
    config = config or messaging_config()
    now = clock.now()
    due = max(now, not_before) if not_before else now
    if marketing:
        due = rules.next_allowed(due, timezone=customer.timezone, quiet=config.quiet_hours)
    why = rules.skip_reason(
        _recipient(session, customer, channel),
        channel=channel,
        marketing=marketing,
        recent_asks=recent_asks(
            session, customer_id=customer_id, due=due, days=config.ask_window_days
        )
        if marketing
        else 0,
        cap=config.ask_cap,
        days=config.ask_window_days,
    )
    status = rules.SKIPPED if why else rules.QUEUED
    inserted = session.execute(
        _dialect(session)
        .insert(Message)
        .values(
            cause_key=cause_key,
            customer_id=customer_id,
            template=template,
            channel=channel,
            marketing=marketing,
            status=status,
            reason=why,
            context=dict(context),
            due_at=due,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Message.cause_key])
        .returning(Message.id)
    ).scalar()
    if inserted is None:  # a racing transaction queued the same cause first
        first = session.scalar(select(Message.id).where(Message.cause_key == cause_key))
        return Queued(first, "duplicate", None)
    if template in activation_rules.REVIEW_TEMPLATES:  # the review figures count it
        activation_aggregates.added(session, messages=[inserted])
    _event(session, inserted, status, why, now)
    if why:
        return Queued(None, "skipped", why)
    return Queued(inserted, "queued", None)


def last_asked_at(session: Session, *, customer_id: int) -> datetime | None:
    """When this customer was last asked (a marketing message sent, or queued to go then)."""
    return session.scalar(
        select(func.max(func.coalesce(Message.sent_at, Message.due_at))).where(
            Message.customer_id == customer_id,
            Message.marketing.is_(True),
            Message.status.in_(rules.ASK_STATUSES),
        )
    )


def enqueue_referral_notices(engine: Engine, *, limit: int = 1000) -> int:
    """The referral_notices outbox as transactional messages to the advocate, once each
    (cause_key `referral_notice:{id}`). A notice handed over is marked (queued_at) in the
    same transaction, so a run reads only the new ones through an index instead of checking
    every notice ever written against the messages. Two runs at once: PostgreSQL lets each
    take other rows (SKIP LOCKED); the message's unique cause_key keeps it once anyway."""
    queued = 0
    with unit_of_work(engine) as session:
        notices = session.scalars(
            select(ReferralNotice)
            .where(ReferralNotice.queued_at.is_(None))
            .order_by(ReferralNotice.queued_at, ReferralNotice.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if notices:
            session.execute(
                update(ReferralNotice)
                .where(ReferralNotice.id.in_([n.id for n in notices]))
                .values(queued_at=clock.now())
                .execution_options(synchronize_session=False)
            )
        for notice in notices:
            result = enqueue_message(
                session,
                customer_id=notice.customer_id,
                template=REFERRAL_NOTICE,
                cause_key=f"referral_notice:{notice.id}",
                context={"text_en": notice.text_en, "text_zh": notice.text_zh,
                         "step": notice.step},
                marketing=False,
            )  # fmt: skip
            queued += result.status == "queued"
    return queued


# --- delivery --------------------------------------------------------------------------------


class Channel(Protocol):
    def send(self, outgoing: Outgoing) -> Outcome: ...
    def close(self) -> None: ...


class Channels:
    """The channels a delivery run uses, opened on first use and closed at the end."""

    def __init__(self, engine: Engine, config: MessagingConfig) -> None:
        self.engine = engine
        self.config = config
        self._open: dict[str, Channel] = {}

    def get(self, channel: str) -> Channel:
        name = "email" if channel == "email" else "webhook"
        if name not in self._open:
            if name == "email":
                from advocado.channels.email import SmtpChannel

                self._open[name] = SmtpChannel(
                    self.config.smtp_url,
                    mail_from=self.config.mail_from,
                    domain=self.config.mail_domain,
                    timeout=self.config.send_timeout,
                )
            else:
                from advocado.channels.webhook import WebhookChannel

                if not self.config.webhook_url:
                    raise MessagingError(
                        f"channel {channel!r} needs ADVOCADO_MESSAGE_WEBHOOK_URL to be set"
                    )
                secret = self.config.webhook_secret or stored_secret(self.engine, WEBHOOK_SECRET)
                self._open[name] = WebhookChannel(
                    self.config.webhook_url, secret=secret, timeout=self.config.send_timeout
                )
        return self._open[name]

    def close(self) -> None:
        for channel in self._open.values():
            channel.close()
        self._open.clear()


def unsubscribe_token(secret: str, message_id: int) -> str:
    sig = hmac.new(secret.encode(), f"unsubscribe:{message_id}".encode(), hashlib.sha256)
    return f"{message_id}.{sig.hexdigest()[:24]}"


def message_of_unsubscribe_token(secret: str, token: str) -> int | None:
    head, _, _ = token.partition(".")
    if not head.isdigit() or len(head) > 12:
        return None
    expected = unsubscribe_token(secret, int(head))
    return int(head) if hmac.compare_digest(expected, token) else None


def _recover(engine: Engine, moment: datetime) -> tuple[int, int]:
    """Lapsed claims back to queued (never handed to a channel); lapsed sends to uncertain."""
    with unit_of_work(engine) as session:
        back = session.execute(
            update(Message)
            .where(Message.status == rules.CLAIMED, Message.lease_until < moment)
            .values(status=rules.QUEUED, leased_by=None, lease_until=None, updated_at=moment)
        ).rowcount
        lapsed = session.scalars(
            select(Message.id).where(Message.status == rules.SENDING, Message.lease_until < moment)
        ).all()
        why = rules.reason("lease_lapsed")
        for message_id in lapsed:
            changed = session.execute(
                update(Message)
                .where(Message.id == message_id, Message.status == rules.SENDING)
                .values(status=rules.UNCERTAIN, reason=why, updated_at=moment)
            ).rowcount
            if changed:
                _event(session, message_id, rules.UNCERTAIN, why, moment)
    return back or 0, len(lapsed)


def _claim(engine: Engine, moment: datetime, limit: int, worker_id: str, seconds: int) -> list:
    with unit_of_work(engine) as session:
        ids = session.scalars(
            select(Message.id)
            .where(Message.status == rules.QUEUED, Message.due_at <= moment)
            .order_by(Message.due_at, Message.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not ids:
            return []
        session.execute(
            update(Message)
            .where(Message.id.in_(ids), Message.status == rules.QUEUED)
            .values(
                status=rules.CLAIMED,
                leased_by=worker_id,
                lease_until=moment + timedelta(seconds=seconds),
                updated_at=moment,
            )
        )
        return list(ids)


@dataclass(frozen=True)
class _Prepared:
    outgoing: Outgoing | None
    final: str | None = None  # set when no send is needed (skipped / dead / lost)


def _prepare(
    engine: Engine,
    message_id: int,
    worker_id: str,
    config: MessagingConfig,
    secret: str,
    now: datetime | None,
) -> _Prepared:
    """Re-check, render and record the links; commit `sending` just before the send."""
    moment = now or clock.now()
    with unit_of_work(engine) as session:
        message = session.get(Message, message_id, with_for_update=True)
        if message is None or message.status != rules.CLAIMED or message.leased_by != worker_id:
            return _Prepared(None, "lost")
        customer = session.get(Customer, message.customer_id)
        assert customer is not None
        why = rules.skip_reason(
            _recipient(session, customer, message.channel),
            channel=message.channel,
            marketing=message.marketing,
            recent_asks=0,  # the cap was decided when it was queued
            cap=1,
            days=config.ask_window_days,
        )
        if why:
            _finish(session, message, rules.SKIPPED, why, moment)
            return _Prepared(None, rules.SKIPPED)
        locale = rules.pick_locale(customer.locale)
        unsubscribe_url = (
            f"{config.base_url}/u/{unsubscribe_token(secret, message.id)}"
            if message.marketing
            else None
        )
        context = dict(message.context)
        context.setdefault("name", customer.name)
        if message.template == "review_ask" and "review_links" not in context:
            context["review_links"] = [
                {"name": link.name, "url": link.url} for link in config.review_links
            ]
        try:
            source = template_source(session, message.template, locale)
            rendered = templates.render(
                source,
                name=message.template,
                locale=locale,
                context=context,
                secret=secret,
                message_id=message.id,
                base_url=config.base_url,
                sender=config.sender_identity,
                unsubscribe_url=unsubscribe_url,
            )
        except templates.TemplateProblem as error:
            _finish(session, message, rules.DEAD, rules.reason("render_error", str(error)), moment)
            return _Prepared(None, rules.DEAD)
        dialect = _dialect(session)
        with _review_changing(session, message):  # a review ask's links count per site
            for token, url, label in rendered.links:
                session.execute(
                    dialect.insert(MessageLink)
                    .values(token=token, message_id=message.id, url=url, label=label,
                            clicks=0, created_at=moment)
                    .on_conflict_do_nothing()
                )  # fmt: skip
        address = _address(customer, message.channel)
        assert address is not None
        message.status = rules.SENDING
        message.lease_until = moment + timedelta(seconds=config.send_timeout * 3 + 30)
        message.locale = locale
        message.recipient = address
        message.subject = rendered.subject
        message.attempts += 1
        message.updated_at = moment
        return _Prepared(
            Outgoing(
                message_id=message.id,
                cause_key=message.cause_key,
                channel=message.channel,
                to=address,
                to_name=customer.name,
                locale=locale,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                unsubscribe_url=unsubscribe_url,
                template=message.template,
                customer_external_id=customer.external_id,
                attempt=message.attempts,
            )
        )


def _finish(
    session: Session,
    message: Message,
    status: str,
    why: str | None,
    at: datetime,
    *,
    detail: str | None = None,
    event: str | None = None,
    sent_at: datetime | None = None,
) -> None:
    # Every status a message ends a round in passes here: the review figures follow it, and
    # a plan's recruits follow the invitation messages sent.
    recruit = sent_at is not None and message.template in INVITE_TEMPLATES
    with (
        _review_changing(session, message),
        activation_aggregates.recruiting(session, [message.customer_id] if recruit else []),
    ):
        message.status = status
        message.reason = why
        message.leased_by = None
        message.lease_until = None
        message.updated_at = at
        if sent_at is not None:
            message.sent_at = sent_at
    _event(session, message.id, event or status, detail or why, at)


INVITE_TEMPLATES = activation_rules.REFERRAL_TEMPLATES + activation_rules.UGC_TEMPLATES


def _review_changing(session: Session, message: Message) -> AbstractContextManager[None]:
    """A write of a review ask moves the review figures (activation_aggregates); others none."""
    if message.template not in activation_rules.REVIEW_TEMPLATES:
        return nullcontext()
    return activation_aggregates.changing(session, messages=[message.id])


def _record(
    engine: Engine,
    message_id: int,
    worker_id: str,
    outcome: Outcome,
    config: MessagingConfig,
    now: datetime | None,
) -> str:
    """Write what the channel said. Only the lease holder may; a send that finished after its
    lease lapsed (now `uncertain`) is still recorded, since we now know."""
    moment = now or clock.now()
    with unit_of_work(engine) as session:
        message = session.get(Message, message_id, with_for_update=True)
        if (
            message is None
            or message.leased_by != worker_id
            or message.status not in (rules.SENDING, rules.UNCERTAIN)
        ):
            return "lost"
        message.provider_id = outcome.provider_id or message.provider_id
        if outcome.kind == "sent":
            _finish(session, message, rules.SENT, None, moment, detail=outcome.detail[:500],
                    sent_at=moment)  # fmt: skip
            return rules.SENT
        if outcome.kind == "uncertain":
            _finish(session, message, rules.UNCERTAIN, outcome.detail, moment)
            return rules.UNCERTAIN
        if outcome.kind == "bounced":
            why = rules.reason("bounced", outcome.detail)
            _finish(session, message, rules.BOUNCED, why, moment)
            if message.channel == "email" and message.recipient:
                _suppress(session, "email", message.recipient, why, moment)
            return rules.BOUNCED
        # retry
        if message.attempts >= config.max_attempts:
            why = rules.reason("max_attempts", outcome.detail, attempts=message.attempts)
            _finish(session, message, rules.DEAD, why, moment)
            return rules.DEAD
        why = rules.reason("send_failed", outcome.detail)
        _finish(session, message, rules.QUEUED, why, moment, event=rules.FAILED)
        due = moment + rules.backoff(message.attempts)
        if message.marketing:  # a retry waits out quiet hours too
            customer = session.get(Customer, message.customer_id)
            timezone = customer.timezone if customer else None
            due = rules.next_allowed(due, timezone=timezone, quiet=config.quiet_hours)
        message.due_at = due
        return "retried"


def deliver_due(
    engine: Engine,
    *,
    now: datetime | None = None,
    limit: int = 200,
    worker_id: str = "worker",
    channels: Channels | None = None,
) -> DeliveryReport:
    """Deliver what is due: queue pending referral notices, recover lapsed leases, claim up
    to `limit` due messages and send them one by one. Safe to run in several processes."""
    config = messaging_config()
    moment = now or clock.now()
    report = DeliveryReport()
    report.notices_queued = enqueue_referral_notices(engine)
    report.recovered, report.uncertain = _recover(engine, moment)
    ids = _claim(engine, moment, limit, worker_id, config.claim_seconds)
    report.claimed = len(ids)
    if not ids:
        return report
    secret = stored_secret(engine, LINK_SECRET)
    own = channels is None
    channels = channels or Channels(engine, config)
    try:
        for message_id in ids:
            prepared = _prepare(engine, message_id, worker_id, config, secret, now)
            if prepared.outgoing is None:
                result = prepared.final or "lost"
            else:
                try:
                    channel = channels.get(prepared.outgoing.channel)
                except (MessagingError, ValueError) as error:
                    outcome = Outcome("retry", str(error))
                else:
                    outcome = channel.send(prepared.outgoing)
                result = _record(engine, message_id, worker_id, outcome, config, now)
            report.outcomes.append((message_id, result))
            if result == rules.SENT:
                report.sent += 1
            elif result == rules.SKIPPED:
                report.skipped += 1
            elif result == "retried":
                report.retried += 1
            elif result == rules.BOUNCED:
                report.bounced += 1
            elif result == rules.DEAD:
                report.dead += 1
            elif result == rules.UNCERTAIN:
                report.uncertain += 1
            else:
                report.lost += 1
    finally:
        if own:
            channels.close()
    return report


# --- templates -------------------------------------------------------------------------------


def template_source(session: Session, name: str, locale: str) -> templates.Source:
    """The brand's override in this locale, else the shipped one, else English (override, then
    shipped)."""
    for candidate in dict.fromkeys((locale, "en")):
        row = session.scalars(
            select(MessageTemplate).where(
                MessageTemplate.name == name, MessageTemplate.locale == candidate
            )
        ).first()
        if row is not None:
            return templates.Source(row.subject, row.text_body, row.html_body, "override")
        shipped = templates.shipped_source(name, candidate)
        if shipped is not None:
            return shipped
    raise templates.TemplateProblem(f"template {name!r}: none in {locale} or en")


# --- suppression, unsubscribe, clicks, bounces, retry ----------------------------------------

SUPPRESSION_KINDS = ("email", "phone", "customer")


def _suppress(session: Session, kind: str, value: str, why: str, at: datetime) -> None:
    session.execute(
        _dialect(session)
        .insert(Suppression)
        .values(kind=kind, value=value, reason=why, created_at=at)
        .on_conflict_do_nothing()
    )


def suppression_value(kind: str, value: str) -> str:
    if kind not in SUPPRESSION_KINDS:
        raise MessagingError(f"kind {kind!r}: expected one of {', '.join(SUPPRESSION_KINDS)}")
    value = value.strip()
    if kind == "email":
        if "@" not in value:
            raise MessagingError(f"value {value!r}: not an email address")
        return value.lower()
    if kind == "phone":
        digits = normalise_phone(value)
        if len(digits.lstrip("+")) < 5:
            raise MessagingError(f"value {value!r}: not a phone number")
        return digits
    if not value.isdigit():
        raise MessagingError(f"value {value!r}: a customer is given by its numeric id")
    return value


def add_suppression(engine: Engine, *, kind: str, value: str, reason: str = "") -> bool:
    """Adds to the suppression list; False when it was already there."""
    normalised = suppression_value(kind, value)
    with unit_of_work(engine) as session:
        if kind == "customer" and session.get(Customer, int(normalised)) is None:
            raise MessagingError(f"value {value!r}: no such customer")
        exists = session.scalar(
            select(Suppression.id).where(Suppression.kind == kind, Suppression.value == normalised)
        )
        if exists:
            return False
        _suppress(session, kind, normalised, f"manual: {reason or 'added by an operator'}",
                  clock.now())  # fmt: skip
        return True


def list_suppressions(engine: Engine, *, limit: int = 500) -> list[dict[str, Any]]:
    with read_only(engine) as session:
        rows = session.scalars(select(Suppression).order_by(Suppression.id.desc()).limit(limit))
        return [
            {"kind": r.kind, "value": r.value, "reason": r.reason, "created_at": r.created_at}
            for r in rows
        ]


@dataclass(frozen=True)
class UnsubscribeTarget:
    message_id: int
    customer_id: int
    locale: str
    already: bool


def unsubscribe_target(engine: Engine, *, token: str) -> UnsubscribeTarget | None:
    secret = stored_secret(engine, LINK_SECRET)
    message_id = message_of_unsubscribe_token(secret, token)
    if message_id is None:
        return None
    with read_only(engine) as session:
        message = session.get(Message, message_id)
        if message is None:
            return None
        customer = session.get(Customer, message.customer_id)
        assert customer is not None
        unsubscribed, _ = _suppression(session, customer)
        return UnsubscribeTarget(
            message_id, customer.id, rules.pick_locale(customer.locale), unsubscribed
        )


def unsubscribe(engine: Engine, *, token: str, source: str = "link") -> UnsubscribeTarget | None:
    """Instant and final for marketing: the customer (and their email and phone) go on the
    suppression list as `unsubscribed`, and their consent is withdrawn. Idempotent."""
    target = unsubscribe_target(engine, token=token)
    if target is None:
        return None
    moment = clock.now()
    why = rules.reason("unsubscribed", f"{source}, message {target.message_id}")
    with unit_of_work(engine) as session:
        customer = session.get(Customer, target.customer_id, with_for_update=True)
        assert customer is not None
        _suppress(session, "customer", str(customer.id), why, moment)
        if customer.email:
            _suppress(session, "email", customer.email.strip().lower(), why, moment)
        if customer.phone:
            _suppress(session, "phone", normalise_phone(customer.phone), why, moment)
        if customer.marketing_consent:
            customer.marketing_consent = False
            customer.consent_at = moment
            customer.consent_source = f"unsubscribed ({source})"
            customer.updated_at = moment
            from advocado.services import cohorts

            cohorts.mark_dirty(session, [customer.id])  # consent is a segment filter
    return target


def message_link_target(engine: Engine, *, token: str) -> str | None:
    """Where /m/{token} leads, recording nothing (link scanners, HEAD requests)."""
    with read_only(engine) as session:
        return session.scalar(select(MessageLink.url).where(MessageLink.token == token))


def record_message_click(engine: Engine, *, token: str) -> str | None:
    """The target URL of /m/{token}, or None. The first click of each link marks it and the
    message `clicked` (once); later ones only count."""
    moment = clock.now()
    with unit_of_work(engine) as session:
        link = session.scalars(select(MessageLink).where(MessageLink.token == token)).first()
        if link is None:
            return None
        session.execute(
            update(MessageLink)
            .where(MessageLink.id == link.id)
            .values(clicks=MessageLink.clicks + 1)
        )
        if link.clicked_at is not None:  # a later click only counts
            return link.url
        template, cause_key = session.execute(
            select(Message.template, Message.cause_key).where(Message.id == link.message_id)
        ).one()
        # The first click moves the review figures and the funnel's "clicked" of the
        # enrolment that sent it (activation_aggregates), in this transaction.
        with activation_aggregates.changing(
            session,
            messages=[link.message_id] if template in activation_rules.REVIEW_TEMPLATES else [],
            enrolments=[activation_aggregates.enrolment_of_cause(cause_key)],
        ):
            _first_click(session, link, moment)
        return link.url


def _first_click(session: Session, link: MessageLink, moment: datetime) -> None:
    first = session.execute(
        update(MessageLink)
        .where(MessageLink.id == link.id, MessageLink.clicked_at.is_(None))
        .values(clicked_at=moment)
    ).rowcount
    if first:
        changed = session.execute(
            update(Message)
            .where(Message.id == link.message_id, Message.clicked_at.is_(None))
            .values(clicked_at=moment, updated_at=moment)
        ).rowcount
        session.execute(
            update(Message)
            .where(Message.id == link.message_id, Message.status.in_((rules.SENT,
                   rules.UNCERTAIN)))
            .values(status=rules.CLICKED)
        )  # fmt: skip
        what = f"{link.label or 'link'}: {link.url}" + ("" if changed else " (again)")
        _event(session, link.message_id, rules.CLICKED, what, moment)


def record_bounce(engine: Engine, *, message_id: int, detail: str) -> str:
    """An asynchronous bounce report: the message is `bounced` and its address suppressed.
    Returns the new status; raises MessagingError for an unknown or unsent message."""
    moment = clock.now()
    with unit_of_work(engine) as session:
        message = session.get(Message, message_id, with_for_update=True)
        if message is None:
            raise MessageNotFound(f"message {message_id}: no such message")
        if message.status not in (rules.SENT, rules.CLICKED, rules.UNCERTAIN, rules.BOUNCED):
            raise MessagingError(
                f"message {message_id}: is {message.status}, only a sent message can bounce"
            )
        if message.status == rules.BOUNCED:
            return rules.BOUNCED
        why = rules.reason("bounced", detail[:500] or "reported")
        _finish(session, message, rules.BOUNCED, why, moment)
        if message.channel == "email" and message.recipient:
            _suppress(session, "email", message.recipient.lower(), why, moment)
        return rules.BOUNCED


def retry_message(engine: Engine, *, message_id: int, actor: str = "operator") -> str:
    """An operator's retry of a dead, uncertain or bounced message: queued again now, with a
    fresh round of attempts. For `uncertain` this may send it a second time: the operator's
    call, recorded in the history."""
    moment = clock.now()
    with unit_of_work(engine) as session:
        message = session.get(Message, message_id, with_for_update=True)
        if message is None:
            raise MessageNotFound(f"message {message_id}: no such message")
        if message.status not in rules.RETRYABLE:
            raise MessagingError(
                f"message {message_id}: is {message.status}; only "
                f"{', '.join(rules.RETRYABLE)} messages can be retried"
            )
        message.attempts = 0
        message.due_at = moment
        _finish(session, message, rules.QUEUED, None, moment, detail=f"retried by {actor}")
        return rules.QUEUED


# --- reading ---------------------------------------------------------------------------------


def list_messages(
    engine: Engine,
    *,
    status: str | None = None,
    template: str | None = None,
    customer_id: int | None = None,
    reason: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    if status is not None and status not in rules.STATUSES:
        raise MessagingError(f"status {status!r}: expected one of {', '.join(rules.STATUSES)}")
    query = select(Message, Customer.external_id).join(Customer, Customer.id == Message.customer_id)
    if status:
        query = query.where(Message.status == status)
    if template:
        query = query.where(Message.template == template)
    if customer_id is not None:
        query = query.where(Message.customer_id == customer_id)
    if reason:
        query = query.where(Message.reason.like(f"{reason}%"))
    if before_id is not None:
        query = query.where(Message.id < before_id)
    query = query.order_by(Message.id.desc()).limit(max(1, min(limit, 1000)))
    with read_only(engine) as session:
        return [_message_dict(m, external_id) for m, external_id in session.execute(query)]


def _message_dict(message: Message, external_id: str) -> dict[str, Any]:
    return {
        "id": message.id,
        "cause_key": message.cause_key,
        "customer_id": message.customer_id,
        "customer_external_id": external_id,
        "template": message.template,
        "channel": message.channel,
        "marketing": message.marketing,
        "status": message.status,
        "reason": message.reason,
        "locale": message.locale,
        "recipient": message.recipient,
        "subject": message.subject,
        "attempts": message.attempts,
        "due_at": message.due_at,
        "sent_at": message.sent_at,
        "clicked_at": message.clicked_at,
        "created_at": message.created_at,
        "updated_at": message.updated_at,
    }


def message_detail(engine: Engine, *, message_id: int) -> dict[str, Any] | None:
    with read_only(engine) as session:
        row = session.execute(
            select(Message, Customer.external_id)
            .join(Customer, Customer.id == Message.customer_id)
            .where(Message.id == message_id)
        ).first()
        if row is None:
            return None
        detail = _message_dict(row[0], row[1])
        detail["context"] = row[0].context
        detail["events"] = [
            {"status": e.status, "detail": e.detail, "at": e.at}
            for e in session.scalars(
                select(MessageEvent)
                .where(MessageEvent.message_id == message_id)
                .order_by(MessageEvent.id)
            )
        ]
        detail["links"] = [
            {"token": link.token, "url": link.url, "label": link.label,
             "clicked_at": link.clicked_at, "clicks": link.clicks}
            for link in session.scalars(
                select(MessageLink).where(MessageLink.message_id == message_id)
                .order_by(MessageLink.id)
            )
        ]  # fmt: skip
        return detail


def status_counts(engine: Engine) -> dict[str, int]:
    with read_only(engine) as session:
        rows = session.execute(select(Message.status, func.count()).group_by(Message.status))
        return {status: count for status, count in rows}


FUNNEL_STEPS = ("asked", "skipped", "delivered", "clicked", "bounced", "dead", "uncertain")


def funnel(engine: Engine, *, since: datetime | None = None) -> dict[str, dict[str, int]]:
    """Per template: how many were asked (queued or sent), skipped, delivered, clicked,
    bounced, dead or uncertain, for messages created since `since` (all when None)."""
    query = select(Message.template, Message.status, func.count()).group_by(
        Message.template, Message.status
    )
    if since is not None:
        query = query.where(Message.created_at >= since)
    result: dict[str, dict[str, int]] = {}
    with read_only(engine) as session:
        for template, status, count in session.execute(query):
            row = result.setdefault(template, dict.fromkeys(FUNNEL_STEPS, 0))
            if status == rules.SKIPPED:
                row["skipped"] += count
                continue
            row["asked"] += count
            if status in (rules.SENT, rules.CLICKED):
                row["delivered"] += count
            if status == rules.CLICKED:
                row["clicked"] += count
            if status in (rules.BOUNCED, rules.DEAD, rules.UNCERTAIN):
                row[status] += count
    return result


def ids_of(results: Sequence[Queued]) -> list[int]:
    return [r.message_id for r in results if r.message_id is not None]
