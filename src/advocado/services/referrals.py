"""Referral events in (signup, order, refund): attribution, fraud checks, qualification,
rewards, clawback. One event is one transaction, exactly once:

- the event row is claimed first by its sender's id (unique): a second delivery of the same
  id, even racing the first, finds it and answers with the first one's outcome;
- every effect has its own unique key on its cause (referral per (program, friend), reward
  per (program, rule, beneficiary, trigger), coupon per reward, ledger entry per key), so
  even a different event id for the same order cannot pay twice;
- issuing takes the program row's lock (PostgreSQL) so tiers, caps and budgets are counted
  on what is really there; SQLite's single writer (BEGIN IMMEDIATE) gives the same.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, Integer, and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain import fraud, progress, refunds
from advocado.domain.attribution import (
    Attribution,
    ClickSeen,
    CodeSeen,
    NotAttributed,
    attribute,
)
from advocado.domain.codes import normalise
from advocado.domain.programs import ProgramConfig
from advocado.domain.rewards import Grant, Trigger, evaluate, money_value
from advocado.services import (
    activation_aggregates,
    audit,
    cohorts,
    coupons,
    customer_aggregates,
    customer_value,
    ledger,
    referral_aggregates,
)
from advocado.services.clicks import hash_ip, ip_salt
from advocado.services.programs import config_of
from advocado.store.db import built, unit_of_work
from advocado.store.models import (
    Click,
    Customer,
    Order,
    OrderRefund,
    Program,
    Referral,
    ReferralCode,
    ReferralCounter,
    ReferralEvent,
    ReferralNotice,
    Reward,
)

EVENT_TYPES = ("signup", "order", "refund")
KNOWN_FIELDS = (
    "event_id",
    "type",
    "occurred_at",
    "customer_external_id",
    "email",
    "phone",
    "name",
    "referral_code",
    "visitor_id",
    "ip",
    "user_agent",
    "order_external_id",
    "amount",
    "currency",
    "payment_fingerprint",
)
# Statuses a referral is stored in; "reward_pending" and "rewarded" are told apart on reading
# (whether the hold has ended), so no job has to flip them.
SIGNED_UP, REVIEW, QUALIFIED, REWARDED, REJECTED = (
    "signed_up",
    "review",
    "qualified",
    "rewarded",
    "rejected",
)


@dataclass(frozen=True)
class EventIn:
    event_id: str
    type: str
    occurred_at: datetime
    customer_external_id: str
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    referral_code: str | None = None
    visitor_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    order_external_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    payment_fingerprint: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    ip_hash: str | None = None  # set by ingest_event: the raw IP is never stored

    def payload(self) -> dict[str, Any]:
        """What is kept of the event: everything sent, the raw IP only as a hash."""
        found = {name: getattr(self, name) for name in KNOWN_FIELDS}
        found["occurred_at"] = self.occurred_at.isoformat()
        found["ip_hash"] = self.ip_hash
        found.pop("ip")
        return {**dict(self.extra), **{k: v for k, v in found.items() if v is not None}}


class EventError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def ingest_event(engine: Engine, event: EventIn) -> dict[str, Any]:
    """Process one event, exactly once; the outcome (with `duplicate: true` on a repeat)."""
    if event.type not in EVENT_TYPES:
        raise EventError("type", f"one of {', '.join(EVENT_TYPES)}")
    if event.type in ("order", "refund") and not event.order_external_id:
        raise EventError("order_external_id", f"needed for {event.type}")
    if event.type == "order" and (event.amount is None or not event.currency):
        raise EventError("amount", "an order needs amount (minor units) and currency")
    if event.type == "refund" and event.amount is not None and event.amount <= 0:
        raise EventError("amount", "a refund's amount is positive (minor units); omit it for all")
    if event.ip:
        event = dataclasses.replace(event, ip_hash=hash_ip(event.ip, ip_salt(engine)))
    for attempt in range(6):
        try:
            with unit_of_work(engine) as session:
                return _ingest(session, event)
        except OperationalError as error:
            # PostgreSQL may pick us as a deadlock victim when events of related customers
            # cross; the transaction rolled back whole, so running it again is safe.
            if attempt == 5 or "deadlock" not in str(error).lower():
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def _dialect(session: Session) -> Any:
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


def _ingest(session: Session, event: EventIn) -> dict[str, Any]:
    now = clock.now()
    table = ReferralEvent.__table__
    claimed = session.scalar(
        built(  # Core: no ORM bookkeeping per column
            session,
            "claim",
            lambda d: d.insert(table).on_conflict_do_nothing().returning(table.c.id),
        ),
        {
            "event_id": event.event_id,
            "type": event.type,
            "occurred_at": event.occurred_at,
            "payload": event.payload(),
            "received_at": now,
        },
    )
    if claimed is None:
        stored = session.scalar(
            select(ReferralEvent).where(ReferralEvent.event_id == event.event_id)
        )
        assert stored is not None
        return {**(stored.outcome or {}), "duplicate": True}
    customer = _customer(session, event)
    # The dashboard's referral aggregates follow this customer's referrals, orders and
    # rewards: read before the event's writes and after (services.referral_aggregates).
    with referral_aggregates.friends_changing(session, [customer.id]):
        if event.type == "signup":
            outcome = _signup(session, event, customer)
        elif event.type == "order":
            outcome = _order(session, event, customer)
        else:
            outcome = _refund(session, event, customer)
    outcome = {"event_id": event.event_id, "type": event.type, **outcome, "duplicate": False}
    session.execute(
        built(
            session,
            "event_outcome",
            lambda d: (
                update(table)
                .where(table.c.id == bindparam("claimed"))
                .values(customer_id=bindparam("customer"), outcome=bindparam("outcome"))
            ),
        ),
        {"claimed": claimed, "customer": customer.id, "outcome": outcome},
    )
    return outcome


def _customer(session: Session, event: EventIn) -> Customer:
    """The event's customer, created or updated with the fields it carries (one statement:
    this runs on every event)."""
    now = clock.now()
    given = {
        name: getattr(event, name) for name in ("email", "phone", "name") if getattr(event, name)
    }

    def build(dialect: Any) -> Any:
        statement = dialect.insert(Customer)
        if given:  # a known customer gets what was sent (`excluded`: the values offered)
            set_ = {name: statement.excluded[name] for name in (*given, "updated_at")}
            statement = statement.on_conflict_do_update(
                index_elements=[Customer.external_id], set_=set_
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=[Customer.external_id])
        return statement.returning(Customer)

    customer = session.scalar(
        built(session, "customer:" + ",".join(given), build),
        {
            "external_id": event.customer_external_id,
            "locale": "en",
            "timezone": "UTC",
            "marketing_consent": False,
            "tags": [],
            "attributes": {},
            "created_at": now,
            "updated_at": now,
            **given,
        },
        execution_options={"populate_existing": True},
    )
    if customer is None:  # known already, nothing new sent: read it
        customer = session.scalar(
            select(Customer).where(Customer.external_id == event.customer_external_id)
        )
    assert customer is not None
    if customer.created_at == now:  # a new customer may match a segment (no filter, no consent)
        cohorts.mark_dirty(session, [customer.id])
    return customer


# --- attribution ------------------------------------------------------------------------


def _code_seen(program: Program, code: ReferralCode, at: datetime) -> CodeSeen:
    config = config_of(program)
    return CodeSeen(
        code.id, program.id, code.customer_id, config.attribution_days, config.active_at(at)
    )


def _clicks_of(session: Session, visitor_id: str | None, before: datetime) -> list[ClickSeen]:
    if not visitor_id:
        return []
    rows = session.execute(
        built(
            session,
            "clicks_of",
            lambda _: (
                select(Click.clicked_at, ReferralCode, Program)
                .join(ReferralCode, ReferralCode.id == Click.code_id)
                .join(Program, Program.id == ReferralCode.program_id)
                .where(
                    Click.visitor_id == bindparam("visitor"), Click.clicked_at <= bindparam("at")
                )
                .order_by(Click.clicked_at)
                .limit(50)
            ),
        ),
        {"visitor": visitor_id, "at": before},
    )
    return [ClickSeen(_code_seen(p, c, before), at) for at, c, p in rows]


def _ordered_before(session: Session, customer_id: int, at: datetime, but: str | None) -> bool:
    def build(_: Any) -> Any:
        query = select(Order.id).where(
            Order.customer_id == bindparam("customer"), Order.placed_at < bindparam("at")
        )
        if but:
            query = query.where(Order.external_id != bindparam("but"))
        return query.limit(1)

    query = built(session, f"ordered_before:{bool(but)}", build)
    found = session.scalar(query, {"customer": customer_id, "at": at, "but": but})
    return found is not None


def _attribute(
    session: Session, event: EventIn, friend: Customer, existing: bool | None = None
) -> tuple[Attribution | NotAttributed, Program | None]:
    entered = None
    program = None
    if event.referral_code:
        found = session.execute(
            built(
                session,
                "code",
                lambda _: (
                    select(ReferralCode, Program)
                    .join(Program, Program.id == ReferralCode.program_id)
                    .where(ReferralCode.code == bindparam("code"))
                ),
            ),
            {"code": normalise(event.referral_code)},
        ).first()
        if found is not None:
            entered = _code_seen(found[1], found[0], event.occurred_at)
            program = found[1]
    clicks = _clicks_of(session, event.visitor_id, event.occurred_at)
    if existing is None:
        existing = _ordered_before(session, friend.id, event.occurred_at, event.order_external_id)
    decision = attribute(
        at=event.occurred_at, entered=entered, clicks=clicks, existing_customer=existing
    )
    if isinstance(decision, Attribution) and (
        program is None or program.id != decision.code.program_id
    ):
        program = session.get(Program, decision.code.program_id)
    if event.referral_code and entered is None and isinstance(decision, NotAttributed):
        decision = NotAttributed(
            f"unknown referral code {event.referral_code!r}", f"推荐码 {event.referral_code} 不存在"
        )
    return decision, program


def _recent_payloads(session: Session, *customer_ids: int) -> dict[int, list[dict[str, Any]]]:
    """Each customer's last 50 event payloads, for all of them in one query."""

    def build(_: Any) -> Any:
        ranked = (
            select(
                ReferralEvent.customer_id,
                ReferralEvent.payload,
                func.row_number()
                .over(partition_by=ReferralEvent.customer_id, order_by=ReferralEvent.id.desc())
                .label("n"),
            )
            .where(ReferralEvent.customer_id.in_(bindparam("ids", expanding=True)))
            .subquery()
        )
        return select(ranked.c.customer_id, ranked.c.payload).where(ranked.c.n <= 50)

    found: dict[int, list[dict[str, Any]]] = {i: [] for i in customer_ids}
    for customer_id, payload in session.execute(
        built(session, "recent_payloads", build), {"ids": list(customer_ids)}
    ):
        found[customer_id].append(payload)
    return found


def _identity(
    customer: Customer, event: EventIn | None, payloads: list[dict[str, Any]]
) -> fraud.Identity:
    """What is known of a person from their own events (devices, networks, payments)."""
    payloads = list(payloads)
    if event is not None:
        payloads.append(event.payload())
    visitors = {p["visitor_id"] for p in payloads if p.get("visitor_id")}
    networks = {
        (p["ip_hash"], p["user_agent"])
        for p in payloads
        if p.get("ip_hash") and p.get("user_agent")
    }
    payments = {p["payment_fingerprint"] for p in payloads if p.get("payment_fingerprint")}
    return fraud.Identity(
        customer_id=customer.id,
        email=customer.email,
        phone=customer.phone,
        name=customer.name,
        visitor_ids=frozenset(visitors),
        ip_user_agents=frozenset(networks),
        payments=frozenset(payments),
        ip=event.ip if event is not None else None,
    )


def _fraud_check(
    session: Session,
    program: Program,
    advocate_id: int,
    friend: Customer,
    event: EventIn,
    code_id: int | None = None,
) -> fraud.Verdict:
    config = config_of(program)
    advocate = session.get(Customer, advocate_id)
    assert advocate is not None
    hour_ago = event.occurred_at - timedelta(hours=1)
    recent = session.scalar(
        built(
            session,
            "velocity",
            lambda _: select(func.count(Referral.id)).where(
                Referral.program_id == bindparam("program"),
                Referral.advocate_id == bindparam("advocate"),
                Referral.signed_up_at >= bindparam("since"),
                Referral.referee_id != bindparam("friend"),
            ),
        ),
        {"program": program.id, "advocate": advocate_id, "since": hour_ago, "friend": friend.id},
    )
    if code_id is None:
        code_id = session.scalar(
            select(ReferralCode.id).where(
                ReferralCode.program_id == program.id, ReferralCode.customer_id == advocate_id
            )
        )
    unique_clicks, hosts = 0, []
    if code_id is not None:
        day_ago = event.occurred_at - timedelta(days=1)
        unique_clicks = (
            session.scalar(
                built(
                    session,
                    "unique_clicks",
                    lambda _: select(func.count(func.distinct(Click.fingerprint))).where(
                        Click.code_id == bindparam("code"),
                        Click.clicked_at >= bindparam("since"),
                        Click.is_bot.is_(False),
                    ),
                ),
                {"code": code_id, "since": day_ago},
            )
            or 0
        )
        referrers = session.scalars(
            built(
                session,
                "referrers",
                lambda _: (
                    select(Click.referrer)
                    .where(Click.code_id == bindparam("code"), Click.referrer.is_not(None))
                    .distinct()
                    .limit(100)
                ),
            ),
            {"code": code_id},
        )
        hosts = [urlsplit(r).hostname or "" for r in referrers]
    payloads = _recent_payloads(session, advocate.id, friend.id)
    return fraud.check(
        config,
        advocate=_identity(advocate, None, payloads[advocate.id]),
        friend=_identity(friend, event, payloads[friend.id]),
        referrals_last_hour=recent or 0,
        unique_clicks_last_day=unique_clicks,
        referrer_hosts=hosts,
    )


def _notice(
    session: Session, referral: Referral, customer_id: int, step: str, text: progress.Text
) -> None:
    table = ReferralNotice.__table__
    session.execute(
        built(session, "notice", lambda d: d.insert(table).on_conflict_do_nothing()),
        {
            "referral_id": referral.id,
            "customer_id": customer_id,
            "step": step,
            "text_en": text.en,
            "text_zh": text.zh,
            "created_at": clock.now(),
        },
    )


def _create_referral(
    session: Session, event: EventIn, friend: Customer, existing: bool | None = None
) -> tuple[Referral | None, dict[str, Any], Program | None]:
    """The friend's referral, attributed now (signup, or a code entered at checkout), with
    its program."""
    decision, program = _attribute(session, event, friend, existing)
    if isinstance(decision, NotAttributed) or program is None:
        return (
            None,
            {"attributed": False, "reason": {"en": decision.because_en, "zh": decision.because_zh}},
            None,
        )
    advocate_id = decision.code.advocate_id
    verdict = _fraud_check(
        session, program, advocate_id, friend, event, code_id=decision.code.code_id
    )
    status = {fraud.ALLOW: SIGNED_UP, fraud.REVIEW: REVIEW, fraud.REJECT: REJECTED}[
        verdict.decision
    ]
    now = clock.now()
    # The friend joins the program's people, the advocate may become one (dashboard clv).
    # The advocate's lock first, as reviews and refunds take it before changing a status
    # (which locks the advocate's customer row too): one order, no deadlock.
    _lock_program(session, program.id, advocate_id)
    # A friend's signup is level 2's "acted" of the enrolment that issued the code.
    enrolments = (
        []
        if status == REJECTED
        else activation_aggregates.enrolments_of_code(session, advocate_id, decision.code.code_id)
    )
    with (
        customer_value.groups_changing(session, (advocate_id, friend.id)),
        activation_aggregates.changing(session, enrolments=enrolments),
        activation_aggregates.joining(session, [friend.id]),  # one of the program's people
    ):
        referral = _insert_referral(session, program, advocate_id, friend, decision, event,
                                    status, verdict, now)  # fmt: skip
    if referral is None:  # already referred in this program: the first attribution stands
        first = session.scalar(
            select(Referral).where(
                Referral.program_id == program.id, Referral.referee_id == friend.id
            )
        )
        return first, {"attributed": True, "already": True}, program
    cohorts.joined_program(session, program.id, friend.id)  # the program's people, same transaction
    config = config_of(program)
    friend_name = progress.mask(friend.name)
    if status == REJECTED:
        first = verdict.findings[0]
        _notice(
            session,
            referral,
            advocate_id,
            "rejected",
            progress.rejected(friend_name, first.en, first.zh),
        )
    elif status == SIGNED_UP:
        _notice(
            session, referral, advocate_id, "signed_up", progress.signed_up(friend_name, config)
        )
        _issue_on_signup(session, program, referral, friend, event.occurred_at)
    return (
        referral,
        {
            "attributed": True,
            "program": program.slug,
            "source": decision.source,
            "because": {"en": decision.because_en, "zh": decision.because_zh},
            "status": status,
            "findings": [f.as_dict() for f in verdict.findings],
        },
        program,
    )


# --- the three events -------------------------------------------------------------------


def _insert_referral(
    session: Session, program: Program, advocate_id: int, friend: Customer, decision: Any,
    event: EventIn, status: str, verdict: Any, now: Any,
) -> Referral | None:  # fmt: skip
    """The referral row, or None when the friend was already referred in this program."""
    return session.scalar(
        built(
            session,
            "referral",
            lambda d: d.insert(Referral).on_conflict_do_nothing().returning(Referral),
        ),
        {
            "program_id": program.id,
            "advocate_id": advocate_id,
            "referee_id": friend.id,
            "code_id": decision.code.code_id,
            "source": decision.source,
            "status": status,
            "reason": verdict.reason or None,
            "findings": [f.as_dict() for f in verdict.findings],
            "signed_up_at": event.occurred_at,
            "created_at": now,
            "updated_at": now,
        },
        execution_options={"populate_existing": True},
    )


def _signup(session: Session, event: EventIn, friend: Customer) -> dict[str, Any]:
    referral, outcome, program = _create_referral(session, event, friend)
    if referral is not None and referral.status == SIGNED_UP:
        if program is None or program.id != referral.program_id:
            program = session.get(Program, referral.program_id)
        assert program is not None
        if config_of(program).qualifying_event == "signup":
            outcome["qualification"] = _qualify(session, program, referral, event, None, False)
    return outcome


def _order(session: Session, event: EventIn, friend: Customer) -> dict[str, Any]:
    order_id = event.order_external_id
    assert order_id is not None and event.amount is not None and event.currency
    first = not _ordered_before(session, friend.id, event.occurred_at, order_id)
    now = clock.now()
    fields = {
        "customer_id": friend.id,
        "amount": event.amount,
        "currency": event.currency.upper(),
        "placed_at": event.occurred_at,
    }

    def build(dialect: Any) -> Any:
        statement = dialect.insert(Order.__table__)
        set_ = {name: statement.excluded[name] for name in (*fields, "updated_at")}
        return statement.on_conflict_do_update(index_elements=["external_id"], set_=set_)

    owners = customer_aggregates.order_owners(session, [order_id]) | {friend.id}
    with customer_aggregates.orders_changing(session, owners):  # the dashboard's paid_order_days
        session.execute(
            built(session, "order", build),
            {
                "external_id": order_id,
                "status": "paid",
                "created_at": now,
                "updated_at": now,
                **fields,
            },
        )
    outcome: dict[str, Any] = {"order": order_id, "first_order": first}
    referrals = list(
        session.scalars(
            built(
                session,
                "referrals_of",
                lambda _: (
                    select(Referral)
                    .where(Referral.referee_id == bindparam("friend"))
                    .order_by(Referral.id)
                ),
            ),
            {"friend": friend.id},
        )
    )
    known: dict[int, Program] = {}  # held here: the session's identity map is weak
    if not referrals and (event.referral_code or event.visitor_id) and first:
        referral, attributed, program = _create_referral(session, event, friend, existing=not first)
        outcome.update(attributed)
        referrals = [referral] if referral is not None else []
        if program is not None:
            known[program.id] = program
    results = []
    for referral in referrals:
        program = known.get(referral.program_id) or session.get(Program, referral.program_id)
        assert program is not None
        results.append(_qualify(session, program, referral, event, event.amount, first))
    if results:
        outcome["referrals"] = results
    return outcome


def _qualify(
    session: Session,
    program: Program,
    referral: Referral,
    event: EventIn,
    amount: int | None,
    first: bool,
) -> dict[str, Any]:
    config = config_of(program)
    result: dict[str, Any] = {"program": program.slug, "referral_id": referral.id}
    _lock_program(session, program.id, referral.advocate_id)
    # Lock the referral so two orders of one friend cannot both qualify it, and read it as it
    # is now. (SQLite: the transaction holds the only write lock since BEGIN IMMEDIATE, so
    # what this session read is current.)
    if _dialect(session) is postgresql:
        session.execute(
            select(Referral)
            .where(Referral.id == referral.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    if referral.status not in (SIGNED_UP, REVIEW) or referral.qualified_at is not None:
        return {
            **result,
            "status": referral.status,
            "qualified": False,
            "reason": {"en": "already settled", "zh": "已处理"},
        }
    ok, en, zh = _qualifies(config, event.type, amount, first, event.occurred_at, referral)
    if not ok:
        return {
            **result,
            "status": referral.status,
            "qualified": False,
            "reason": {"en": en, "zh": zh},
        }
    referral.qualified_at = event.occurred_at
    referral.qualifying_order = event.order_external_id
    referral.updated_at = clock.now()
    if event.payment_fingerprint and referral.status == SIGNED_UP:
        friend = session.get(Customer, referral.referee_id)
        assert friend is not None
        verdict = _fraud_check(session, program, referral.advocate_id, friend, event)
        if verdict.decision != fraud.ALLOW:
            _set_status(session, referral, REVIEW if verdict.decision == fraud.REVIEW else REJECTED)
            referral.reason = verdict.reason
            referral.findings = [*referral.findings, *(f.as_dict() for f in verdict.findings)]
    if referral.status != SIGNED_UP:
        return {
            **result,
            "status": referral.status,
            "qualified": True,
            "reason": {
                "en": "held for review" if referral.status == REVIEW else "rejected",
                "zh": "待人工审核" if referral.status == REVIEW else "已拒绝",
            },
            "findings": referral.findings,
        }
    _set_status(session, referral, QUALIFIED, config)
    cause = f"{event.type}:{event.order_external_id or referral.id}"
    issued = _issue(
        session,
        program,
        referral,
        stage="qualified",
        cause=cause,
        at=event.occurred_at,
        order_amount=amount,
        first_order=first,
    )
    return {**result, "status": referral.status, "qualified": True, **issued}


def _qualifies(
    config: ProgramConfig,
    event_type: str,
    amount: int | None,
    first: bool,
    at: datetime,
    referral: Referral,
) -> tuple[bool, str, str]:
    if not config.active_at(at):
        return False, "the program is not running", "推荐活动未在进行中"
    if at > referral.signed_up_at + timedelta(days=config.attribution_days):
        return (
            False,
            f"later than {config.attribution_days} days after signup",
            f"超过注册后{config.attribution_days}天",
        )
    wanted = config.qualifying_event
    if wanted == "signup":
        return (event_type == "signup", "waits for the signup", "需完成注册")
    if event_type != "order":
        return False, "waits for an order", "需完成消费"
    if wanted == "first_order" and not first:
        return False, "not the friend's first order", "非好友首单"
    if (amount or 0) < config.min_amount:
        return (
            False,
            f"order below the minimum {config.min_amount}",
            f"订单金额低于门槛{config.min_amount / 100:g}",
        )
    return True, "", ""


# --- counters (budget, tiers, monthly cap) ---------------------------------------------
# Kept in `referral_counters` in the same transaction as what they count; issuers of one
# program are serialised (the program row's lock on PostgreSQL, the single writer on SQLite),
# so a counter read under that lock is exact. Every change of a referral's status goes through
# _set_status and every reward issued or reversed adjusts "spent", so a counter always equals
# what a sum over the history would give (test_counters_equal_the_history checks it).

SUCCESS = (QUALIFIED, REWARDED)


def _month(at: datetime) -> tuple[str, datetime, datetime]:
    start = at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return f"{start:%Y-%m}", start, end


def _counter_history(session: Session, program_id: int, scope: str) -> int:
    """What a counter is, summed from the history (its value the first time it is needed)."""
    kind, _, rest = scope.partition(":")
    if kind == "spent":
        return sum(
            money_value_of(k, a)
            for k, a in session.execute(
                select(Reward.kind, Reward.amount).where(
                    Reward.program_id == program_id, Reward.reversed_at.is_(None)
                )
            )
        )
    if kind == "successes":
        return (
            session.scalar(
                select(func.count(Referral.id)).where(
                    Referral.program_id == program_id,
                    Referral.advocate_id == int(rest),
                    Referral.status.in_(SUCCESS),
                )
            )
            or 0
        )
    if kind == "rewarded":
        advocate, _, month = rest.partition(":")
        _, start, end = _month(datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC))
        return (
            session.scalar(
                select(func.count(Referral.id)).where(
                    Referral.program_id == program_id,
                    Referral.advocate_id == int(advocate),
                    Referral.status == REWARDED,
                    Referral.qualified_at >= start,
                    Referral.qualified_at < end,
                )
            )
            or 0
        )
    raise ValueError(f"unknown counter {scope!r}")


def _seen(session: Session) -> dict[tuple[int, str], int]:
    """Counter values this transaction has read or written (no second read)."""
    return session.info.setdefault("referral_counters", {})


def counter(session: Session, program_id: int, scope: str) -> int:
    """A counter's value (one indexed row); made from the history the first time."""
    seen = _seen(session)
    if (program_id, scope) in seen:
        return seen[program_id, scope]
    value = session.scalar(
        built(
            session,
            "counter",
            lambda _: select(ReferralCounter.value).where(
                ReferralCounter.program_id == bindparam("program"),
                ReferralCounter.scope == bindparam("scope"),
            ),
        ),
        {"program": program_id, "scope": scope},
    )
    if value is None:
        value = _counter_history(session, program_id, scope)
        session.execute(
            _dialect(session)
            .insert(ReferralCounter)
            .values(program_id=program_id, scope=scope, value=value)
            .on_conflict_do_nothing()
        )
    seen[program_id, scope] = value
    return value


def _bump(session: Session, program_id: int, scope: str, delta: int) -> None:
    """Add to a counter if it exists (if not, it will be made from the history, which already
    includes this change)."""
    if delta:
        table = ReferralCounter.__table__
        value = session.scalar(
            built(
                session,
                "bump",
                lambda _: (
                    update(table)
                    .where(
                        table.c.program_id == bindparam("program"), table.c.scope == bindparam("s")
                    )
                    .values(value=table.c.value + bindparam("delta"))
                    .returning(table.c.value)
                ),
            ),
            {"program": program_id, "s": scope, "delta": delta},
        )
        if value is None:
            _seen(session).pop((program_id, scope), None)
        else:
            _seen(session)[program_id, scope] = value


def _set_status(
    session: Session, referral: Referral, status: str, config: ProgramConfig | None = None
) -> None:
    """The one place a stored referral changes status, keeping the counters in step. The
    monthly counter is kept only while the program has a monthly cap (applying a program
    drops its counters, so they are made again from the history under the new rules)."""
    old = referral.status
    if old == status:
        return
    program_id, advocate = referral.program_id, referral.advocate_id
    delta = (status in SUCCESS) - (old in SUCCESS)
    _bump(session, program_id, f"successes:{advocate}", delta)
    if config is None:
        program = session.get(Program, program_id)
        assert program is not None
        config = config_of(program)
    capped = config.cap_per_advocate_per_month is not None
    if capped and REWARDED in (old, status) and referral.qualified_at is not None:
        month = _month(referral.qualified_at)[0]
        _bump(session, program_id, f"rewarded:{advocate}:{month}", 1 if status == REWARDED else -1)
    if (old == REJECTED) == (status == REJECTED):
        referral.status = status
        return
    # Rejected or let back in: the advocate may stop or start being one (dashboard clv), and
    # level 2's "acted" of the enrolment that issued the code moves.
    enrolments = activation_aggregates.enrolments_of_code(session, advocate, referral.code_id)
    with (
        customer_value.groups_changing(session, [advocate]),
        activation_aggregates.changing(session, enrolments=enrolments),
    ):
        referral.status = status


def _lock_program(session: Session, program_id: int, advocate_id: int) -> None:
    """Serialise the writers of the counters a change of this advocate's referral touches
    (qualifying, issuing, clawing back), taken before any of them changes. Once per
    transaction. SQLite: BEGIN IMMEDIATE already serialises.

    A program with a budget or surprise rules has program-wide counters (spent, surprises
    won): the program row's lock, FOR NO KEY UPDATE, which does not block the FOR KEY SHARE
    locks that inserting rows referencing the program takes (FOR UPDATE would turn those into
    deadlocks). Otherwise every counter is the advocate's own (successes for tiers, the
    monthly cap), so an advisory lock on (program, advocate) is enough and events of
    different advocates issue at once; the program row is held FOR KEY SHARE meanwhile, so
    applying a new config (FOR UPDATE) still waits for them, as before."""
    if _dialect(session) is not postgresql:
        return
    locked = session.info.setdefault("locked_programs", set())
    if program_id in locked or (program_id, advocate_id) in locked:
        return
    program = session.get(Program, program_id)
    assert program is not None
    config = config_of(program)
    if config.budget is not None or any(rule.hidden for rule in config.rules):
        session.execute(
            select(Program.id).where(Program.id == program_id).with_for_update(key_share=True)
        )
        locked.add(program_id)
        return
    session.execute(
        built(
            session,
            "lock_advocate",
            lambda _: (
                select(
                    func.pg_advisory_xact_lock(
                        bindparam("program", type_=Integer), bindparam("advocate", type_=Integer)
                    )
                )
                .select_from(Program.__table__)
                .where(Program.__table__.c.id == bindparam("program", type_=Integer))
                .with_for_update(read=True, key_share=True)
            ),
        ),
        {"program": program_id, "advocate": advocate_id},
    )
    locked.add((program_id, advocate_id))


def _issue_on_signup(session, program, referral, friend, at) -> None:  # type: ignore[no-untyped-def]
    """The rewards of the "attributed" stage (the friend's offer), caused by the signup."""
    _issue(
        session,
        program,
        referral,
        stage="attributed",
        cause=f"signup:{friend.external_id}",
        at=at,
        order_amount=None,
        first_order=False,
    )


def _issue(
    session: Session,
    program: Program,
    referral: Referral,
    *,
    stage: str,
    cause: str,
    at: datetime,
    order_amount: int | None,
    first_order: bool,
) -> dict[str, Any]:
    """Grant what the rules say for this stage: referee offers when the friend is attributed,
    referrer (and level-2) rewards when the referral qualifies."""
    config = config_of(program)
    recipients = ("referee",) if stage == "attributed" else ("referrer", "level2")
    if not any(rule.to in recipients for rule in config.rules):
        if stage == "qualified":
            _set_status(session, referral, QUALIFIED)
        return {"rewards": [], "skipped": []}
    _lock_program(session, program.id, referral.advocate_id)
    # The advocate's other successful referrals (this one is counted if it already is one).
    successes = counter(session, program.id, f"successes:{referral.advocate_id}") - (
        referral.status in SUCCESS
    )
    # Surprises won so far (their budget), counted on the (program, rule, …) unique index,
    # and only for programs that have hidden rules: this runs on every rewarding event.
    hidden = [rule.id for rule in config.rules if rule.hidden]
    won = {}
    if hidden:
        won = dict(
            session.execute(
                select(Reward.rule, func.count(Reward.id))
                .where(
                    Reward.program_id == program.id,
                    Reward.rule.in_(hidden),
                    Reward.reversed_at.is_(None),
                )
                .group_by(Reward.rule)
            ).all()
        )
    trigger = Trigger(
        nth=successes + 1, at=at, order_amount=order_amount, first_order=first_order, cause=cause
    )
    grants = [g for g in evaluate(config, trigger, surprises_won=won) if g.to in recipients]
    skipped: list[dict[str, str]] = []
    if stage == "qualified" and config.cap_per_advocate_per_month is not None:
        month = _month(at)[0]
        this_month = counter(session, program.id, f"rewarded:{referral.advocate_id}:{month}") - (
            referral.status == REWARDED
            and referral.qualified_at is not None
            and _month(referral.qualified_at)[0] == month
        )
        if this_month >= config.cap_per_advocate_per_month:
            skipped += [
                {"rule": g.rule, "en": "monthly cap per advocate reached", "zh": "已达每月奖励上限"}
                for g in grants
                if g.to == "referrer"
            ]
            grants = [g for g in grants if g.to != "referrer"]
    spent = 0
    if config.budget is not None:
        spent = counter(session, program.id, "spent")
    hold_end = at + timedelta(days=config.hold_days) if stage == "qualified" else at
    issued: list[dict[str, Any]] = []
    friend = session.get(Customer, referral.referee_id)
    assert friend is not None
    friend_name = progress.mask(friend.name)
    for grant in grants:
        if config.budget is not None and spent + money_value(grant) > config.budget:
            skipped.append(
                {"rule": grant.rule, "en": "program budget exhausted", "zh": "活动预算已用完"}
            )
            continue
        beneficiary = _beneficiary(session, program, referral, grant)
        if beneficiary is None:
            skipped.append(
                {"rule": grant.rule, "en": "no second-level referrer", "zh": "无上级推荐人"}
            )
            continue
        reward_id = _grant(session, program, config, referral, grant, beneficiary, cause, hold_end)
        if reward_id is None:
            continue
        spent += money_value(grant)
        issued.append(
            {
                "rule": grant.rule,
                "to": grant.to,
                "type": grant.type,
                "amount": grant.amount,
                "reward_id": reward_id,
                "available_at": hold_end.isoformat(),
                "because": {"en": grant.because_en, "zh": grant.because_zh},
            }
        )
        if grant.to == "referrer":
            rule = next(r for r in config.rules if r.id == grant.rule)
            what = progress.describe(rule, config.currency, grant.amount)
            text = (
                progress.surprise(friend_name, what)
                if grant.hidden
                else progress.rewarded(friend_name, what, f"{hold_end:%Y-%m-%d}", config.hold_days)
            )
            _notice(session, referral, beneficiary, f"reward:{grant.rule}", text)
    if stage == "qualified":
        _set_status(session, referral, REWARDED if issued else QUALIFIED, config)
        if not issued and skipped:
            referral.reason = " | ".join(f"{s['en']} / {s['zh']}" for s in skipped)
    return {"rewards": issued, "skipped": skipped}


def money_value_of(kind: str, amount: int) -> int:
    return amount if kind in ("credit", "coupon") else 0


def _beneficiary(
    session: Session, program: Program, referral: Referral, grant: Grant
) -> int | None:
    if grant.to == "referee":
        return referral.referee_id
    if grant.to == "referrer":
        return referral.advocate_id
    # Level 2: whoever referred the advocate in this program. Never deeper (compliance).
    return session.scalar(
        select(Referral.advocate_id).where(
            Referral.program_id == program.id,
            Referral.referee_id == referral.advocate_id,
            Referral.status.in_((REWARDED, QUALIFIED)),
        )
    )


def _grant(
    session: Session,
    program: Program,
    config: ProgramConfig,
    referral: Referral,
    grant: Grant,
    beneficiary: int,
    cause: str,
    hold_end: datetime,
) -> int | None:
    """The reward (its id) and its coupon or ledger entry, once per (program, rule, beneficiary,
    trigger); None if it already exists."""
    table = Reward.__table__
    reward_id = session.scalar(
        built(
            session,
            "reward",
            lambda d: d.insert(table).on_conflict_do_nothing().returning(table.c.id),
        ),
        {
            "program_id": program.id,
            "rule": grant.rule,
            "beneficiary_id": beneficiary,
            "trigger": cause,
            "referral_id": referral.id,
            "role": grant.to,
            "kind": grant.type,
            "amount": grant.amount,
            "currency": config.currency,
            "hidden": grant.hidden,
            "details": {"en": grant.because_en, "zh": grant.because_zh, "gift": grant.gift},
            "available_at": hold_end,
            "created_at": clock.now(),
        },
    )
    if reward_id is None:
        return None
    if config.budget is not None:
        _bump(session, program.id, "spent", money_value(grant))
    if grant.type in ("points", "credit"):
        asset = ledger.POINTS if grant.type == "points" else config.currency
        expires = hold_end + timedelta(days=grant.valid_days) if grant.valid_days else None
        ledger.post(
            session,
            key=f"reward:{reward_id}",
            asset=asset,
            debit=f"program:{program.slug}:rewards",
            credit=ledger.account(beneficiary, asset),
            amount=grant.amount,
            available_at=hold_end,
            expires_at=expires,
            reward_id=reward_id,
            memo=grant.because_en,
        )
    elif grant.type == "coupon" and grant.coupon is not None:
        coupons.issue(
            session,
            reward_id=reward_id,
            customer_id=beneficiary,
            spec=grant.coupon,
            currency=config.currency,
            valid_from=hold_end,
        )
    return reward_id


def _refund(session: Session, event: EventIn, customer: Customer) -> dict[str, Any]:
    """A refund of the whole order (no amount, or as much as is left) or of part of it. Per
    program (domain/refunds): if what the friend kept no longer meets the program's minimum,
    rewards still in their hold are clawed back and the referral is rejected; a reward whose
    hold has ended stands; a partial refund that leaves enough changes nothing."""
    order_id = event.order_external_id
    assert order_id is not None
    order = session.scalar(select(Order).where(Order.external_id == order_id))
    refunded_before = (
        session.scalar(
            select(func.coalesce(func.sum(OrderRefund.amount), 0)).where(
                OrderRefund.order_external_id == order_id
            )
        )
        or 0
    )
    if order is not None:
        left = order.amount - refunded_before
        amount = left if event.amount is None else min(event.amount, max(left, 0))
    else:
        amount = event.amount or 0
    session.execute(
        _dialect(session)
        .insert(OrderRefund)
        .values(
            event_id=event.event_id,
            order_external_id=order_id,
            amount=amount,
            refunded_at=event.occurred_at,
        )
        .on_conflict_do_nothing()
    )
    whole = order is None or event.amount is None or refunded_before + amount >= order.amount
    if order is not None:
        # paid_order_days and referred revenue follow the order's status (same transaction)
        with customer_aggregates.orders_changing(session, [order.customer_id]):
            order.status = "refunded" if whole else "partially_refunded"
            order.updated_at = clock.now()
    rewards = list(
        session.scalars(
            select(Reward)
            .where(Reward.trigger == f"order:{order_id}", Reward.reversed_at.is_(None))
            .order_by(Reward.id)
        )
    )
    program_ids = sorted({r.program_id for r in rewards})
    waiting = list(
        session.scalars(
            select(Referral).where(
                Referral.qualifying_order == order_id, Referral.status.in_((REVIEW, QUALIFIED))
            )
        )
    )
    program_ids = sorted({*program_ids, *(r.program_id for r in waiting)})
    # The friends whose referrals and rewards this refund changes: the referral aggregates
    # read their part now and again when the event is done (services.referral_aggregates).
    friends = {r.referee_id for r in waiting}
    if rewards:
        of = sorted({r.referral_id for r in rewards})
        friends |= set(session.scalars(select(Referral.referee_id).where(Referral.id.in_(of))))
    referral_aggregates.follow(session, friends)
    # Counters change: lock as issuers do, for the advocate of each referral concerned.
    concerned = {(r.program_id, r.advocate_id) for r in waiting}
    of_rewards = list({r.referral_id for r in rewards})
    if of_rewards:
        concerned |= set(
            session.execute(
                select(Referral.program_id, Referral.advocate_id).where(Referral.id.in_(of_rewards))
            ).tuples()
        )
    for program_id, advocate_id in sorted(concerned):
        _lock_program(session, program_id, advocate_id)
    if _dialect(session) is postgresql and program_ids:
        rewards = list(
            session.scalars(
                select(Reward)
                .where(Reward.id.in_([r.id for r in rewards]), Reward.reversed_at.is_(None))
                .order_by(Reward.id)
                .with_for_update(key_share=True)
                .execution_options(populate_existing=True)
            )
        )
    decisions: dict[int, refunds.AfterRefund] = {}
    for program_id in program_ids:
        program = session.get(Program, program_id)
        assert program is not None
        decisions[program_id] = refunds.after_refund(
            order_amount=order.amount if order is not None else None,
            refunded_before=refunded_before,
            refund=None if whole else amount,
            min_amount=config_of(program).min_amount,
        )
    reversed_, kept = [], []
    for reward in rewards:
        decision = decisions[reward.program_id]
        if decision.still_qualifies:
            kept.append({"reward_id": reward.id, "en": decision.en, "zh": decision.zh})
            continue
        if event.occurred_at >= reward.available_at:
            kept.append(
                {
                    "reward_id": reward.id,
                    "en": "refund after the hold: reward stands",
                    "zh": "退款发生在保留期之后，奖励保留",
                }
            )
            continue
        en = f"{decision.en} within the hold" if decision.full else decision.en
        zh = f"{decision.zh}（在保留期内）"
        claw_back(session, reward, en=en, zh=zh)
        reversed_.append(reward.id)
    referral_ids = sorted({r.referral_id for r in rewards if r.id in reversed_})
    for referral_id in referral_ids:
        referral = session.get(Referral, referral_id)
        assert referral is not None
        decision = decisions[referral.program_id]
        _set_status(session, referral, REJECTED)
        referral.reason = f"{decision.en} within the hold / {decision.zh}（在保留期内）"
        referral.updated_at = clock.now()
        friend = session.get(Customer, referral.referee_id)
        _notice(
            session,
            referral,
            referral.advocate_id,
            "clawed_back",
            progress.clawed_back(progress.mask(friend.name if friend else None)),
        )
    # A refunded order that only qualified (rewards not yet out, e.g. under review) no longer
    # qualifies unless enough of it was kept: the referral goes back to waiting.
    for referral in waiting:
        if decisions[referral.program_id].still_qualifies:
            continue
        referral.qualified_at = None
        referral.qualifying_order = None
        if referral.status == QUALIFIED:
            _set_status(session, referral, SIGNED_UP)
    outcome: dict[str, Any] = {"order": order_id, "reversed_rewards": reversed_, "kept": kept}
    outcome["refund"] = {
        "amount": amount,
        "whole": whole,
        "remaining": 0 if whole or order is None else order.amount - refunded_before - amount,
        "decisions": {
            str(pid): {"qualifies": d.still_qualifies, "en": d.en, "zh": d.zh}
            for pid, d in decisions.items()
        },
    }
    return outcome


def claw_back(
    session: Session, reward: Reward, *, en: str, zh: str, actor: str = audit.SYSTEM
) -> None:
    """Reverse a reward: a reversing ledger entry, or its coupon voided if unused."""
    from advocado.store.models import Coupon, LedgerEntry

    audit.record(
        session,
        actor=actor,
        entity="reward",
        entity_id=reward.id,
        action="reverse",
        before={"kind": reward.kind, "amount": reward.amount, "reversed": False},
        after={"reversed": True, "reason": f"{en} / {zh}"},
    )
    reward.reversed_at = clock.now()
    reward.reversal_reason = f"{en} / {zh}"
    program = session.get(Program, reward.program_id)
    assert program is not None
    if config_of(program).budget is not None:
        _bump(session, reward.program_id, "spent", -money_value_of(reward.kind, reward.amount))
    entry = session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.reward_id == reward.id, LedgerEntry.reverses_id.is_(None)
        )
    )
    if entry is not None:
        ledger.reverse(session, entry, memo=f"clawback: {en}")
    coupon = session.scalar(select(Coupon).where(Coupon.reward_id == reward.id))
    if coupon is not None:
        coupons.void(session, coupon, reason=f"{en} / {zh}")


# --- review queue -----------------------------------------------------------------------


class NotInReview(LookupError):
    pass


def review_queue(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Referral, Program.slug)
        .join(Program, Program.id == Referral.program_id)
        .where(Referral.status == REVIEW)
        .order_by(Referral.id)
    )
    return [_referral_view(session, r, slug) for r, slug in rows]


def decide(
    engine: Engine, *, referral_id: int, approve: bool, note: str = "", actor: str = audit.SYSTEM
) -> dict[str, Any]:
    """Approve (rewards go out now if the friend already qualified) or reject a held referral."""
    # The dashboard's referral aggregates follow the friend (services.referral_aggregates).
    with unit_of_work(engine) as session, referral_aggregates.friends_changing(session, []):
        found = session.execute(
            select(Referral.program_id, Referral.advocate_id, Referral.referee_id).where(
                Referral.id == referral_id
            )
        ).first()
        if found is not None:
            referral_aggregates.follow(session, [found[2]])
            _lock_program(session, found[0], found[1])
        referral = session.scalar(
            select(Referral).where(Referral.id == referral_id).with_for_update(key_share=True)
        )
        if referral is None or referral.status != REVIEW:
            raise NotInReview(
                f"referral {referral_id} is not waiting for review / 该推荐不在待审核队列"
            )
        program = session.get(Program, referral.program_id)
        assert program is not None
        friend = session.get(Customer, referral.referee_id)
        assert friend is not None
        referral.updated_at = clock.now()
        audit.record(
            session,
            actor=actor,
            entity="referral",
            entity_id=referral.id,
            action="approve" if approve else "reject",
            before={"status": REVIEW},
            after={"status": SIGNED_UP if approve else REJECTED, "note": note},
        )
        if not approve:
            _set_status(session, referral, REJECTED)
            referral.reason = f"rejected on review: {note}" if note else (referral.reason or "")
            _notice(
                session,
                referral,
                referral.advocate_id,
                "rejected",
                progress.rejected(
                    progress.mask(friend.name), "not approved on review", "审核未通过"
                ),
            )
            return _referral_view(session, referral, program.slug)
        _set_status(session, referral, SIGNED_UP)
        referral.reason = f"approved on review: {note}" if note else "approved on review / 审核通过"
        _issue_on_signup(session, program, referral, friend, referral.signed_up_at)
        if referral.qualified_at is not None:
            _set_status(session, referral, QUALIFIED)
            order = session.scalar(
                select(Order).where(Order.external_id == referral.qualifying_order)
            )
            kind = "order" if referral.qualifying_order else "signup"
            cause = f"{kind}:{referral.qualifying_order or referral.id}"
            first = order is not None and not _ordered_before(
                session, friend.id, order.placed_at, order.external_id
            )
            _issue(
                session,
                program,
                referral,
                stage="qualified",
                cause=cause,
                at=referral.qualified_at,
                order_amount=order.amount if order else None,
                first_order=first,
            )
        else:
            _notice(
                session,
                referral,
                referral.advocate_id,
                "signed_up",
                progress.signed_up(progress.mask(friend.name), config_of(program)),
            )
        return _referral_view(session, referral, program.slug)


# --- reading ----------------------------------------------------------------------------


def visible_status(referral: Referral, rewards: list[Reward], now: datetime) -> str:
    """clicked → signed_up → qualified → reward_pending → rewarded, or rejected / review."""
    if referral.status == REWARDED:
        live = [r for r in rewards if r.reversed_at is None and r.role != "referee"]
        if any(r.available_at > now for r in live):
            return "reward_pending"
        return "rewarded"
    return referral.status


def _referral_view(session: Session, referral: Referral, slug: str) -> dict[str, Any]:
    friend = session.get(Customer, referral.referee_id)
    advocate = session.get(Customer, referral.advocate_id)
    rewards = list(session.scalars(select(Reward).where(Reward.referral_id == referral.id)))
    return {
        "id": referral.id,
        "program": slug,
        "advocate": advocate.external_id if advocate else None,
        "friend": friend.external_id if friend else None,
        "source": referral.source,
        "status": visible_status(referral, rewards, clock.now()),
        "reason": referral.reason,
        "findings": referral.findings,
        "signed_up_at": referral.signed_up_at.isoformat(),
        "qualified_at": referral.qualified_at.isoformat() if referral.qualified_at else None,
    }


def program_stats(session: Session, slug: str | None = None) -> list[dict[str, Any]]:
    """Per program: clicks (raw, bots included), unique clicks (people, no bots), signups,
    qualified, rejected, in review, rewards pending (in hold) and issued."""
    now = clock.now()
    query = select(Program).order_by(Program.slug)
    if slug:
        query = query.where(Program.slug == slug)
    found = []
    for program in session.scalars(query):
        clicks = (
            select(Click)
            .join(ReferralCode, ReferralCode.id == Click.code_id)
            .where(ReferralCode.program_id == program.id)
            .subquery()
        )
        raw = session.scalar(select(func.count()).select_from(clicks)) or 0
        unique = (
            session.scalar(
                select(func.count(func.distinct(clicks.c.fingerprint))).where(
                    clicks.c.is_bot.is_(False)
                )
            )
            or 0
        )
        statuses = dict(
            session.execute(
                select(Referral.status, func.count(Referral.id))
                .where(Referral.program_id == program.id)
                .group_by(Referral.status)
            ).all()
        )
        qualified = (
            session.scalar(
                select(func.count(Referral.id)).where(
                    Referral.program_id == program.id,
                    Referral.qualified_at.is_not(None),
                    Referral.status.in_((QUALIFIED, REWARDED)),
                )
            )
            or 0
        )
        live = and_(Reward.program_id == program.id, Reward.reversed_at.is_(None))
        pending = (
            session.scalar(select(func.count(Reward.id)).where(live, Reward.available_at > now))
            or 0
        )
        issued = (
            session.scalar(select(func.count(Reward.id)).where(live, Reward.available_at <= now))
            or 0
        )
        reversed_ = (
            session.scalar(
                select(func.count(Reward.id)).where(
                    Reward.program_id == program.id, Reward.reversed_at.is_not(None)
                )
            )
            or 0
        )
        found.append(
            {
                "slug": program.slug,
                "name": program.name,
                "clicks": raw,
                "unique_clicks": unique,
                "signups": sum(statuses.values()),
                "qualified": qualified,
                "rejected": statuses.get(REJECTED, 0),
                "in_review": statuses.get(REVIEW, 0),
                "rewards_pending": pending,
                "rewards_issued": issued,
                "rewards_reversed": reversed_,
            }
        )
    return found


def _visitor_ids(session: Session, customer_id: int) -> set[str]:
    """The visitor cookies a customer's own events carried."""
    return {
        p["visitor_id"]
        for p in session.scalars(
            select(ReferralEvent.payload).where(ReferralEvent.customer_id == customer_id)
        )
        if isinstance(p, dict) and p.get("visitor_id")
    }


def _clicked_not_joined(session: Session, code_id: int, program_id: int, advocate_id: int) -> int:
    """People who clicked the code's link (no bots) and have not signed up yet ("clicked",
    the first status): distinct visitor cookies of its clicks, less those that the events of
    this advocate's referred friends carried. One count in the database: a popular link has
    far more visitors than should be loaded to subtract two sets."""
    visitor = ReferralEvent.payload["visitor_id"].as_string()
    joined = (
        select(visitor)
        .join(Referral, Referral.referee_id == ReferralEvent.customer_id)
        .where(
            Referral.program_id == program_id,
            Referral.advocate_id == advocate_id,
            visitor.is_not(None),  # NOT IN a set holding NULL would match nothing
        )
    )
    return (
        session.scalar(
            select(func.count(func.distinct(Click.visitor_id))).where(
                Click.code_id == code_id, Click.is_bot.is_(False), Click.visitor_id.not_in(joined)
            )
        )
        or 0
    )


STEPS = ("clicked", "signed_up", "qualified", "reward_pending", "rewarded")


def _timeline(
    session: Session, referral: Referral, status: str, code_id: int, visitors: set[str]
) -> list[dict[str, Any]]:
    """The steps a referral went through, oldest first: "clicked" (when the friend's first
    click on the advocate's link is known), then signed up, qualified, and where it is now."""
    steps: list[dict[str, Any]] = []
    if visitors:
        first = session.scalar(
            select(func.min(Click.clicked_at)).where(
                Click.code_id == code_id,
                Click.visitor_id.in_(visitors),
                Click.clicked_at <= referral.signed_up_at,
            )
        )
        if first is not None:
            steps.append({"status": "clicked", "at": first.isoformat()})
    steps.append({"status": "signed_up", "at": referral.signed_up_at.isoformat()})
    if referral.qualified_at is not None and status in ("qualified", *STEPS[3:], REJECTED):
        steps.append({"status": "qualified", "at": referral.qualified_at.isoformat()})
    if status not in ("signed_up", "qualified"):
        steps.append({"status": status, "at": referral.updated_at.isoformat()})
    return steps


def advocate_progress(session: Session, customer_external_id: str) -> dict[str, Any]:
    """What the advocate sees: per program their code, link stats, friends and statuses;
    their notices (newest first); their balances and coupons."""
    from advocado.store.models import Coupon

    customer = session.scalar(select(Customer).where(Customer.external_id == customer_external_id))
    if customer is None:
        raise LookupError(f"no customer {customer_external_id!r}")
    now = clock.now()
    programs = []
    for code, program in session.execute(
        select(ReferralCode, Program)
        .join(Program, Program.id == ReferralCode.program_id)
        .where(ReferralCode.customer_id == customer.id)
        .order_by(Program.slug)
    ):
        raw = session.scalar(select(func.count(Click.id)).where(Click.code_id == code.id)) or 0
        unique = (
            session.scalar(
                select(func.count(func.distinct(Click.fingerprint))).where(
                    Click.code_id == code.id, Click.is_bot.is_(False)
                )
            )
            or 0
        )
        friends = []
        for referral in session.scalars(
            select(Referral)
            .where(Referral.program_id == program.id, Referral.advocate_id == customer.id)
            .order_by(Referral.id)
        ):
            rewards = list(session.scalars(select(Reward).where(Reward.referral_id == referral.id)))
            friend = session.get(Customer, referral.referee_id)
            visitors = _visitor_ids(session, referral.referee_id)
            status = visible_status(referral, rewards, now)
            friends.append(
                {
                    "friend": progress.mask(friend.name if friend else None),
                    "status": status,
                    "signed_up_at": referral.signed_up_at.isoformat(),
                    "timeline": _timeline(session, referral, status, code.id, visitors),
                }
            )
        joined = sum(1 for f in friends if f["status"] != REJECTED)
        clicked_only = _clicked_not_joined(session, code.id, program.id, customer.id)
        programs.append(
            {
                "program": program.slug,
                "code": code.code,
                "link": f"/r/{code.code}",
                "clicks": raw,
                "unique_clicks": unique,
                "friends_joined": joined,
                "clicked_not_joined": clicked_only,
                "summary": {
                    "en": f"your link was clicked {raw} times, {joined} friends joined",
                    "zh": f"您的链接已被点击{raw}次，已有{joined}位好友加入",
                },
                "friends": friends,
            }
        )
    notices = [
        {"step": n.step, "en": n.text_en, "zh": n.text_zh, "at": n.created_at.isoformat()}
        for n in session.scalars(
            select(ReferralNotice)
            .where(ReferralNotice.customer_id == customer.id)
            .order_by(ReferralNotice.id.desc())
            .limit(50)
        )
    ]
    coupon_rows = session.execute(
        select(Coupon, Reward.hidden)
        .outerjoin(Reward, Reward.id == Coupon.reward_id)
        .where(Coupon.customer_id == customer.id)
        .order_by(Coupon.id)
    )
    coupon_list = [
        {
            "code": c.code,
            "amount_off": c.amount_off,
            "percent_off": c.percent_off,
            "min_spend": c.min_spend,
            "currency": c.currency,
            "status": c.status,
            "valid_from": c.valid_from.isoformat(),
            "expires_at": c.expires_at.isoformat(),
        }
        for c, _hidden in coupon_rows
    ]
    balances = {asset: b.as_dict() for asset, b in ledger.balances(session, customer.id).items()}
    return {
        "customer": customer.external_id,
        "programs": programs,
        "notices": notices,
        "balances": balances,
        "coupons": coupon_list,
    }
