"""The tables. Money is integer minor units with a currency; time is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back an aware datetime (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store aware UTC datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    consent_source: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (CheckConstraint("amount >= 0", name="amount_not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units (fen, cents)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), default="paid")
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Response(Base):
    """One NPS survey answer. `external_id` is the sender's id, or a key derived on import."""

    __tablename__ = "responses"
    __table_args__ = (
        CheckConstraint("score >= 0 AND score <= 10", name="score_0_10"),
        # Covers the NPS query: filter by time (and survey), count by score, from the index alone.
        Index("ix_responses_submitted_score", "submitted_at", "score", "survey"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    survey: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(100))
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # What the comment says (text/): set on import and again whenever the comment changes.
    language: Mapped[str | None] = mapped_column(String(8))
    sentiment: Mapped[float | None] = mapped_column(Float)
    persona: Mapped[str | None] = mapped_column(String(12), index=True)
    persona_confidence: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[list[str] | None] = mapped_column(JSON)
    analyzed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SocialProfile(Base):
    """A customer's account on a social platform, as imported (`advocado import social`)."""

    __tablename__ = "social_profiles"
    __table_args__ = (UniqueConstraint("customer_id", "platform"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    platform: Mapped[str] = mapped_column(String(40))
    handle: Mapped[str] = mapped_column(String(200))
    followers: Mapped[int] = mapped_column(BigInteger, default=0)
    engagement_rate: Mapped[float] = mapped_column(Float, default=0.0)  # 0.035 = 3.5 %
    brand_mentions: Mapped[int] = mapped_column(Integer, default=0)
    vertical: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CustomerInsight(Base):
    """Derived labels of one customer, recomputed in bulk: value tier and lifecycle from orders
    (RFM), influence from social profiles. Each carries the numbers that decided it."""

    __tablename__ = "customer_insights"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    recency_days: Mapped[int | None] = mapped_column(Integer)
    frequency: Mapped[int] = mapped_column(Integer, default=0)
    monetary: Mapped[int] = mapped_column(BigInteger, default=0)  # minor units
    value_tier: Mapped[str | None] = mapped_column(String(8), index=True)  # high / mid / low
    lifecycle_stage: Mapped[str | None] = mapped_column(String(12), index=True)
    value_explanation: Mapped[str | None] = mapped_column(Text)
    influence_score: Mapped[float | None] = mapped_column(Float)
    high_influence: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    influence_explanation: Mapped[str | None] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LexiconTerm(Base):
    """A brand's own word for one side of the persona classifier (added without code)."""

    __tablename__ = "lexicon_terms"
    __table_args__ = (UniqueConstraint("term", "persona"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    term: Mapped[str] = mapped_column(String(100))
    persona: Mapped[str] = mapped_column(String(12))  # emotional / rational
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Segment(Base):
    """A saved, named, dynamic set of customers: its filters are evaluated when asked."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ResponseDayCount(Base):
    """Responses per UTC day, survey ('' for none) and score: what NPS over any period reads,
    so it costs days, not rows. Kept equal to `responses` by services.records, which makes
    every write to responses and adjusts these counts in the same transaction."""

    __tablename__ = "response_day_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    survey: Mapped[str] = mapped_column(String(200), primary_key=True)
    score: Mapped[int] = mapped_column(Integer, primary_key=True)
    responses: Mapped[int] = mapped_column(Integer)


class ApiKey(Base):
    """An integrator's key. Only a SHA-256 of the secret is kept; the prefix finds the row."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class IdempotentRequest(Base):
    """The stored answer to a POST made with an Idempotency-Key, replayed on a retry."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class User(Base):
    """A console user. Passwords are argon2 hashes."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The weekly summary email (services/weekly.py): whether this user receives it, and in
    # which language (en, zh-CN, zh-TW).
    weekly_summary: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    locale: Mapped[str] = mapped_column(String(8), default="en", server_default="en")


class WeeklyReport(Base):
    """One weekly summary email to one user for one ISO week ("2026-W47"): the unique
    (user_id, week) makes it once, whatever the number of workers. `sending` while the SMTP
    conversation runs; a lapsed `sending` (crash mid-send) becomes `uncertain` and is never
    resent automatically; `retry` was certainly not accepted and is sent again."""

    __tablename__ = "weekly_reports"
    __table_args__ = (UniqueConstraint("user_id", "week"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    week: Mapped[str] = mapped_column(String(8))
    email: Mapped[str] = mapped_column(String(320))
    locale: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Setting(Base):
    """Installation-wide values that must survive restarts (e.g. the session signing key)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# --- Referral and rewards engine (issue 4) -------------------------------------------------
# Every effect (referral, reward, coupon, ledger entry, notice) carries a unique key on its
# cause, so a retried or racing delivery can never create it twice.


class Program(Base):
    """A referral program. `config` is the program as applied (YAML/JSON): rules, offers,
    fraud settings; the columns are the parts queries filter on."""

    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReferralCode(Base):
    """An advocate's code in one program; the short link is /r/{code}."""

    __tablename__ = "referral_codes"
    __table_args__ = (UniqueConstraint("program_id", "customer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    vanity: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Click(Base):
    """One request of /r/{code}. The IP is kept only as a keyed hash; `fingerprint` (hash of
    IP and user agent) is what unique clicks count."""

    __tablename__ = "clicks"
    __table_args__ = (Index("ix_clicks_code_clicked", "code_id", "clicked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("referral_codes.id"))
    clicked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    visitor_id: Mapped[str] = mapped_column(String(64), index=True)
    ip_hash: Mapped[str | None] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(32))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    referrer: Mapped[str | None] = mapped_column(String(400))
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)


class ClickDayCount(Base):
    """Clicks per code and UTC day, kept by services.click_rollup (a roll-up behind a watermark
    on clicks.id, not the redirect): all clicks, human (non-bot) clicks, and new visitors (the
    (code, fingerprint) pairs whose first human click on that code fell on that day).
    Keyed code first: a segment's figures look up its advocates' codes."""

    __tablename__ = "click_day_counts"

    code_id: Mapped[int] = mapped_column(ForeignKey("referral_codes.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    clicks: Mapped[int] = mapped_column(Integer)
    human_clicks: Mapped[int] = mapped_column(Integer)
    new_visitors: Mapped[int] = mapped_column(Integer)


class ClickProgramDay(Base):
    """ClickDayCount summed per program: what the figures without a segment read (a program
    has thousands of codes; this is one row per day)."""

    __tablename__ = "click_program_days"

    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    clicks: Mapped[int] = mapped_column(Integer)
    human_clicks: Mapped[int] = mapped_column(Integer)
    new_visitors: Mapped[int] = mapped_column(Integer)


class CohortClickDayCount(Base):
    """ClickDayCount summed per segment cohort: the rows of the codes whose holder is a stored
    member (services.click_rollup keeps it; programs have ClickProgramDay)."""

    __tablename__ = "cohort_click_day_counts"

    cohort: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    clicks: Mapped[int] = mapped_column(Integer)
    human_clicks: Mapped[int] = mapped_column(Integer)
    new_visitors: Mapped[int] = mapped_column(Integer)


class ClickVisitor(Base):
    """A visitor's (fingerprint's) first human click on a code: what unique clicks count and
    their drill-down lists. Kept by services.click_rollup with ClickDayCount."""

    __tablename__ = "click_visitors"
    __table_args__ = (Index("ix_click_visitors_first_at", "first_at"),)

    code_id: Mapped[int] = mapped_column(ForeignKey("referral_codes.id"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    first_at: Mapped[datetime] = mapped_column(UtcDateTime)
    first_click_id: Mapped[int] = mapped_column(Integer)  # no FK: rebuilds insert in bulk


class RollupWatermark(Base):
    """How far a roll-up has folded its source table: rows with id <= last_id are in the
    aggregates, the rest (the live tail) are read from the source by the figures."""

    __tablename__ = "rollup_watermarks"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)
    rolled_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReferralEvent(Base):
    """A signup, order or refund as sent by the shop. `event_id` is the sender's id: the same
    id twice is one event. `outcome` is what processing it did, replayed to a retry."""

    __tablename__ = "referral_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Referral(Base):
    """A friend attributed to an advocate in a program: at most one per (program, friend)."""

    __tablename__ = "referrals"
    __table_args__ = (UniqueConstraint("program_id", "referee_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    advocate_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    referee_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    code_id: Mapped[int | None] = mapped_column(ForeignKey("referral_codes.id"))
    source: Mapped[str] = mapped_column(String(10))  # code / click
    status: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    signed_up_at: Mapped[datetime] = mapped_column(UtcDateTime)
    qualified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    qualifying_order: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Reward(Base):
    """One reward from one rule to one beneficiary for one cause. `available_at` ends the hold
    (the refund window); a reward reversed inside it has `reversed_at` and a reason."""

    __tablename__ = "rewards"
    __table_args__ = (UniqueConstraint("program_id", "rule", "beneficiary_id", "trigger"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    rule: Mapped[str] = mapped_column(String(100))
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    trigger: Mapped[str] = mapped_column(String(220))  # e.g. order:<external id>
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    role: Mapped[str] = mapped_column(String(10))  # referrer / referee / level2
    kind: Mapped[str] = mapped_column(String(10))  # points / credit / coupon / gift
    amount: Mapped[int] = mapped_column(BigInteger)  # points, or minor units of face value
    currency: Mapped[str] = mapped_column(String(3))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    available_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reversed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reversal_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Coupon(Base):
    """A single-use coupon bound to one customer. Redemption is one conditional UPDATE."""

    __tablename__ = "coupons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    reward_id: Mapped[int | None] = mapped_column(ForeignKey("rewards.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_off: Mapped[int] = mapped_column(BigInteger, default=0)  # minor units
    percent_off: Mapped[int] = mapped_column(Integer, default=0)
    min_spend: Mapped[int] = mapped_column(BigInteger, default=0)
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active/redeemed/void
    redeemed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    redeemed_order: Mapped[str | None] = mapped_column(String(200))
    discount: Mapped[int | None] = mapped_column(BigInteger)
    void_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LedgerEntry(Base):
    """Append-only double-entry ledger of points and store credit: each row moves `amount`
    (> 0) of `asset` from `debit_account` to `credit_account`. Never updated or deleted; a
    correction is a new row that `reverses` another. `key` names the cause, once."""

    __tablename__ = "ledger_entries"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(250), unique=True)
    asset: Mapped[str] = mapped_column(String(10))  # POINTS or a currency code
    debit_account: Mapped[str] = mapped_column(String(120), index=True)
    credit_account: Mapped[str] = mapped_column(String(120), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    reward_id: Mapped[int | None] = mapped_column(ForeignKey("rewards.id"), index=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"), unique=True)
    available_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    memo: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReferralNotice(Base):
    """A progress notice for an advocate ("张三 signed up; …"), once per step of a referral.
    Kept as rows so a message channel can deliver them later (outbox)."""

    __tablename__ = "referral_notices"
    __table_args__ = (
        UniqueConstraint("referral_id", "customer_id", "step"),
        Index("ix_referral_notices_pending", "queued_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    step: Mapped[str] = mapped_column(String(30))
    text_en: Mapped[str] = mapped_column(Text)
    text_zh: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # When it was handed to messaging (its message queued or skipped, in that transaction):
    # a delivery run reads only the notices where this is NULL.
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# --- Messaging (issue 5, item 6) -----------------------------------------------------------
# A message is a row written in its cause's transaction (outbox), unique on `cause_key`; a
# skipped one is a row too, with its reason. Delivery claims rows with a lease and records each
# status change in message_events. See services/messaging.py for the crash-safety states.


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_status_due", "status", "due_at"),
        Index("ix_messages_customer_marketing", "customer_id", "marketing", "due_at"),
        Index("ix_messages_template_created", "template", "created_at"),  # dashboard: reviews
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cause_key: Mapped[str] = mapped_column(String(250), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    template: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20))
    marketing: Mapped[bool] = mapped_column(Boolean)
    # queued / skipped / claimed / sending / sent / clicked / bounced / uncertain / dead
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    leased_by: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str | None] = mapped_column(String(8))
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(250))
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    clicked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MessageEvent(Base):
    """The status history of a message, one row per change (append-only)."""

    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class MessageLink(Base):
    """A tracked short link /m/{token} in a message; its first click is recorded once."""

    __tablename__ = "message_links"
    __table_args__ = (UniqueConstraint("message_id", "url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(40), unique=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    url: Mapped[str] = mapped_column(String(2000))
    label: Mapped[str | None] = mapped_column(String(200))
    clicked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Suppression(Base):
    """Never send marketing to this email, phone or customer (unsubscribe, bounce, request)."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # email / phone / customer
    value: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MessageTemplate(Base):
    """A brand's override of a shipped template (or a new one), per locale."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("name", "locale"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(Text)
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# --- UGC challenges and the human task queue (issue 5 items 3 and 4) -----------------------
# An invitation is unique per (challenge, customer) and on its cause; a task is unique on its
# cause; an entry is unique per invitation: retried playbook steps never make a second one.


class Challenge(Base):
    """A UGC challenge (#hashtag# story). `texts` holds title, prompt and prize per locale;
    `config` is the file as applied."""

    __tablename__ = "challenges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    hashtag: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    texts: Mapped[dict[str, Any]] = mapped_column(JSON)
    max_image_bytes: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ChallengeInvitation(Base):
    """One customer invited to one challenge; the token is their key to /c/{token}."""

    __tablename__ = "challenge_invitations"
    __table_args__ = (UniqueConstraint("challenge_id", "customer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    cause_key: Mapped[str] = mapped_column(String(250), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ChallengeEntry(Base):
    """What an invited customer submitted: a link and/or an image, and their story. Sent
    again before review it is replaced; the reviewer and the reason are kept."""

    __tablename__ = "challenge_entries"
    __table_args__ = (Index("ix_challenge_entries_challenge_status", "challenge_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"))
    invitation_id: Mapped[int] = mapped_column(ForeignKey("challenge_invitations.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    link: Mapped[str | None] = mapped_column(String(1000))
    text: Mapped[str | None] = mapped_column(Text)
    image: Mapped[bytes | None] = mapped_column(LargeBinary)
    image_type: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10))  # pending / approved / rejected
    featured: Mapped[bool] = mapped_column(Boolean, default=False)
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(320))
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Task(Base):
    """A 1:1 task for a person (ambassador invite, detractor follow-up). `context` is what the
    cause knew (e.g. the playbook and step); the customer's figures are read when shown."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_done_due", "done", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cause_key: Mapped[str] = mapped_column(String(250), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    title: Mapped[str] = mapped_column(String(300))
    assignee_role: Mapped[str] = mapped_column(String(20))
    assignee_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    script: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str | None] = mapped_column(String(12))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    outcome_by: Mapped[str | None] = mapped_column(String(320))
    outcome_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


# --- Console access and measurement (issue 6) ----------------------------------------------


class AuditEntry(Base):
    """Who changed what: one row per change, written in the same transaction as the change
    (services.audit.record), so a change and its record exist together or not at all."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(400))  # user:<email>, api:<key prefix>, cli, system
    entity: Mapped[str] = mapped_column(String(40))  # program, segment, lexicon_term, user, ...
    entity_id: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))  # create, update, delete, approve, ...
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# The dashboard's click figures (all clicks and unique visitors of a period) read this index
# alone, not the click rows.
Index("ix_clicks_dashboard", Click.clicked_at, Click.is_bot, Click.fingerprint)
# --- referrals ops (issue 4, migration 0004): counters, gift fulfilment, partial refunds ---


class ReferralCounter(Base):
    """A running count kept in the same transaction as what it counts, so a rule reads one
    row instead of summing history on every event: a program's budget spent ("spent"), an
    advocate's successful referrals ("successes:{advocate}", for tiers) and rewarded
    referrals per month ("rewarded:{advocate}:{YYYY-MM}", for the monthly cap). A missing
    row is computed from the history the first time it is needed."""

    __tablename__ = "referral_counters"
    __table_args__ = (UniqueConstraint("program_id", "scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    scope: Mapped[str] = mapped_column(String(100))
    value: Mapped[int] = mapped_column(Integer)


class GiftShipment(Base):
    """A physical gift reward sent: at most one per reward (the unique key is the effect), with
    the operator's tracking note. Gifts without a row are the fulfilment queue."""

    __tablename__ = "gift_shipments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"), unique=True)
    tracking: Mapped[str] = mapped_column(Text)
    shipped_by: Mapped[str | None] = mapped_column(String(200))
    shipped_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrderRefund(Base):
    """One refund of (part of) an order, once per refund event: what remains of the order is
    its amount minus these."""

    __tablename__ = "order_refunds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    order_external_id: Mapped[str] = mapped_column(String(200), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    refunded_at: Mapped[datetime] = mapped_column(UtcDateTime)


# --- Playbooks: the SOP engine (issue 5) ----------------------------------------------------
# A playbook is data (YAML), versioned; an enrolment runs one customer through one version.
# What happened is an outbox row (playbook_events) written in the same transaction as its
# cause; every step's effect carries the key "enrolment:<id>:<step>", so it exists once.


class Playbook(Base):
    """A named automation. `version` is the newest version; new enrolments start on it."""

    __tablename__ = "playbooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PlaybookVersion(Base):
    """One applied text of a playbook, never changed: running enrolments keep theirs."""

    __tablename__ = "playbook_versions"
    __table_args__ = (UniqueConstraint("playbook_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    playbook_id: Mapped[int] = mapped_column(ForeignKey("playbooks.id"))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)  # the YAML as applied
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)  # the checked, canonical form
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PlaybookEvent(Base):
    """Outbox: something a playbook may react to (a response written, an activity, a referral
    status change). Written in its cause's transaction; turned into enrolments by the worker."""

    __tablename__ = "playbook_events"
    __table_args__ = (Index("ix_playbook_events_pending", "processed_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(200))  # e.g. response:17, activity:renewal-9
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Enrolment(Base):
    """One customer in one playbook version, for one cause (at most once per cause). `step`
    is the next step to run when `due_at` comes; a worker holds it while `lease_until`."""

    __tablename__ = "enrolments"
    __table_args__ = (
        UniqueConstraint("playbook_id", "customer_id", "cause"),
        Index("ix_enrolments_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    playbook_id: Mapped[int] = mapped_column(ForeignKey("playbooks.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("playbook_versions.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    cause: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # active/completed/exited/handed_off/failed
    step: Mapped[str | None] = mapped_column(String(100))
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    end_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EnrolmentStep(Base):
    """A step an enrolment ran, once: what it did and why (the timeline)."""

    __tablename__ = "enrolment_steps"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "step"),
        # dashboard, activation funnel: a level's steps in the period, what they did and made
        Index("ix_enrolment_steps_step_ran", "step", "ran_at", "outcome", "effect", "enrolment_id"),
        # dashboard, playbook steps: counted from the index alone, already in group order
        Index("ix_enrolment_steps_ran", "step", "outcome", "ran_at", "enrolment_id"),
        # dashboard, a step's drill-down: the steps in time order, a page read, whatever step
        Index("ix_enrolment_steps_ran_at", "ran_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolments.id"))
    step: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(30))
    outcome: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text)
    effect: Mapped[str | None] = mapped_column(String(200))  # e.g. message:12, task:4
    ran_at: Mapped[datetime] = mapped_column(UtcDateTime)


# --- Program plans (issue 6 item 3, seed 002) -----------------------------------------------


class Plan(Base):
    """A program plan: owner, dates (whole days, both included), goals, personas and
    recruitment targets per channel (`spec`, as domain.plans.PlanSpec.as_dict), and the file
    as applied (`config`)."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# --- dashboard pre-aggregates on the response/customer side (issue 6, migration 0011) ------
# Kept equal to the rows by services.customer_aggregates, called in the same transaction as
# every write to responses (services.records, services.voc) and to customer_insights
# (services.insights); `advocado dashboard rebuild` recomputes them from the rows.


class CustomerLatestResponse(Base):
    """Each customer's latest response (latest submitted_at, then highest id): what segment
    filters on scores/personas and the promoters figure judge a customer by."""

    __tablename__ = "customer_latest_responses"
    __table_args__ = (Index("ix_customer_latest_responses_score", "score", "submitted_at"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id"), unique=True)
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    score: Mapped[int] = mapped_column(Integer)
    persona: Mapped[str | None] = mapped_column(String(12))


class PromoterDayCount(Base):
    """Customers whose latest response is a promoter's (9-10), per UTC day of that response,
    its persona and the customer's value tier and influence ('unknown' where none): the
    promoters figure over any period that ends after the newest response costs days, not
    customers."""

    __tablename__ = "promoter_day_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    persona: Mapped[str] = mapped_column(String(12), primary_key=True)
    value_tier: Mapped[str] = mapped_column(String(8), primary_key=True)
    high_influence: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    customers: Mapped[int] = mapped_column(Integer)


# Covering indexes of the dashboard's raw reads at full size (migration 0011): referrals in a
# period by signup or qualification (counts per status/advocate: plan actuals, top
# advocates), the advocates (not rejected), and a customer's orders in a window (CLV of the
# advocates, referred revenue), each answered from the index alone.
Index("ix_referrals_dashboard_signed_up", Referral.signed_up_at, Referral.status,
      Referral.program_id, Referral.advocate_id, Referral.qualified_at)  # fmt: skip
Index("ix_referrals_dashboard_qualified", Referral.qualified_at, Referral.status,
      Referral.program_id, Referral.advocate_id)  # fmt: skip
Index("ix_referrals_dashboard_advocate", Referral.advocate_id, Referral.status,
      Referral.program_id, Referral.signed_up_at, Referral.qualified_at,
      Referral.referee_id)  # fmt: skip
Index("ix_orders_dashboard_customer", Order.customer_id, Order.status, Order.currency,
      Order.placed_at, Order.amount)  # fmt: skip


class PaidOrderDay(Base):
    """Paid orders per UTC day and currency, and per day of the same customer's previous paid
    order in that currency (NO_PREVIOUS_DAY for a first order): order count, revenue. The
    customers who bought in a window of days are the orders in it whose previous order is
    before it, so the 12-month value figure costs days, not orders."""

    __tablename__ = "paid_order_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    previous_day: Mapped[date] = mapped_column(Date, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[int] = mapped_column(BigInteger)


SEGMENT_COHORT_PREFIX = "segment:"  # a saved segment's cohort: "segment:<segment id>"
PROGRAM_COHORT_PREFIX = "program:"  # a program's people: "program:<program id>"


class CohortMember(Base):
    """A customer in a cohort: a saved segment ("segment:<id>") or a program's people, its
    code holders and referees ("program:<id>"). Kept by services.cohorts (its doc says how
    the dashboard reads stay exact while a segment member's data changes)."""

    __tablename__ = "cohort_members"

    cohort: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)


class CohortDirty(Base):
    """Customers written since their segment memberships were last judged (services.cohorts);
    `marks` grows on every write, so the worker clears only what it judged."""

    __tablename__ = "cohort_dirty"

    customer_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    marks: Mapped[int] = mapped_column(Integer, default=1)


class CohortResponseDayCount(Base):
    """response_day_counts per cohort: the responses of the cohort's members."""

    __tablename__ = "cohort_response_day_counts"

    cohort: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    survey: Mapped[str] = mapped_column(String(200), primary_key=True)
    score: Mapped[int] = mapped_column(Integer, primary_key=True)
    responses: Mapped[int] = mapped_column(Integer)


class CohortReferralDayCount(Base):
    """referral_day_counts (no program) per segment cohort: the referrals whose advocate is a
    member (services.cohort_referrals)."""

    __tablename__ = "cohort_referral_day_counts"

    cohort: Mapped[str] = mapped_column(String(40), primary_key=True)
    basis: Mapped[str] = mapped_column(String(10), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    reason: Mapped[str] = mapped_column(Text, primary_key=True)
    qualified: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    referrals: Mapped[int] = mapped_column(Integer)


class CohortReferredRevenueDay(Base):
    """Paid orders per segment cohort, UTC day and currency of the friends with a referral
    (not rejected) from a member; a friend counts once per cohort."""

    __tablename__ = "cohort_referred_revenue_days"

    cohort: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[int] = mapped_column(BigInteger)


class CohortRewardCostDay(Base):
    """Live rewards per segment cohort (of referrals whose advocate is a member), UTC day,
    currency and kind."""

    __tablename__ = "cohort_reward_cost_days"

    cohort: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    rewards: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)


class CohortPromoterDayCount(Base):
    """promoter_day_counts per cohort: the cohort's members whose latest response is a
    promoter's."""

    __tablename__ = "cohort_promoter_day_counts"

    cohort: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    persona: Mapped[str] = mapped_column(String(12), primary_key=True)
    value_tier: Mapped[str] = mapped_column(String(8), primary_key=True)
    high_influence: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    customers: Mapped[int] = mapped_column(Integer)


class CohortPaidOrderDay(Base):
    """paid_order_days per cohort: the paid orders of the cohort's members per currency, UTC
    day, day of the same customer's previous paid order in that currency, and whether the
    customer is an advocate (in any program, as value_groups says), so the clv figure under
    a segment costs days, not members (services.cohorts keeps it)."""

    __tablename__ = "cohort_paid_order_days"
    __table_args__ = {"sqlite_with_rowid": False}

    cohort: Mapped[str] = mapped_column(String(40), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    previous_day: Mapped[date] = mapped_column(Date, primary_key=True)
    advocate: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[int] = mapped_column(BigInteger)


# One cohort's window from the index alone on PostgreSQL (SQLite: the table is its key).
Index("ix_cohort_paid_order_days_window", CohortPaidOrderDay.cohort, CohortPaidOrderDay.currency,
      CohortPaidOrderDay.day, CohortPaidOrderDay.previous_day, CohortPaidOrderDay.advocate,
      postgresql_include=["orders", "revenue"])  # fmt: skip


# The clv figure's window of paid_order_days from the index alone (migration 0015).
Index("ix_paid_order_days_window", PaidOrderDay.currency, PaidOrderDay.day,
      PaidOrderDay.previous_day, PaidOrderDay.orders, PaidOrderDay.revenue)  # fmt: skip


class ValueGroup(Base):
    """The groups the 12-month value figure (services.customer_value) splits a customer into:
    (0, "advocate") brought a friend whose referral is not rejected, in any program;
    (program, "member") holds a code in the program or was referred in it; (program,
    "advocate") a member who brought a friend not rejected in that program. Everyone else is
    in no row. Kept in the same transaction as the referral and code writes that decide it."""

    __tablename__ = "value_groups"

    program_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0: all programs
    role: Mapped[str] = mapped_column(String(10), primary_key=True)  # advocate / member
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id"), primary_key=True, index=True
    )


class ValueGroupDay(Base):
    """paid_order_days for each value group: its members' paid orders per UTC day and
    currency, and per day of the same customer's previous paid order in that currency
    (NO_PREVIOUS_DAY for a first). Customers who bought in a window are the orders in it
    whose previous order is before it, so a group's figure costs days, not orders."""

    __tablename__ = "value_group_days"
    __table_args__ = {"sqlite_with_rowid": False}

    program_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(10), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    previous_day: Mapped[date] = mapped_column(Date, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[int] = mapped_column(BigInteger)


class ValueGroupBuyerDay(Base):
    """Each value group member's paid orders and revenue per currency and UTC day: the clv
    drill-down's page of a group's top buyers reads one group's rows (the advocates are few),
    not every order; a restriction to a member set (a segment) stays a filter on it. Rows
    in key order on SQLite (WITHOUT ROWID): one group's rows are one range."""

    __tablename__ = "value_group_buyer_days"
    __table_args__ = (
        Index("ix_value_group_buyer_days_customer_id", "customer_id"),
        {"sqlite_with_rowid": False},
    )

    program_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(10), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    customer_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[int] = mapped_column(BigInteger)


class CustomerRevenue(Base):
    """Each customer's paid orders and revenue of all time, per currency: an upper bound of
    their revenue in any window, so the clv drill-down's top non-advocates walk customers
    from the highest down and stop early (services.customer_value.top_outside)."""

    __tablename__ = "customer_revenues"
    __table_args__ = (Index("ix_customer_revenues_top", "currency", "revenue", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[int] = mapped_column(BigInteger)


# --- referral-side dashboard aggregates (services.referral_aggregates keeps them) -----------
# program_id ALL_PROGRAMS (0) is the row for "any program": a friend referred in two
# programs counts once there (their orders are revenue once), so it is not a sum of programs.


class ReferralDayCount(Base):
    """Referrals per program, UTC day, status, rejection reason (rejected only, else '') and
    whether qualified_at is set. `basis` "signed_up": the day of signed_up_at (every referral);
    "qualified": the day of qualified_at (only referrals with one)."""

    __tablename__ = "referral_day_counts"

    program_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    basis: Mapped[str] = mapped_column(String(10), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    reason: Mapped[str] = mapped_column(Text, primary_key=True)
    qualified: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    referrals: Mapped[int] = mapped_column(Integer)


class ReferredRevenueDay(Base):
    """Paid orders of referred customers (a friend with a referral not rejected) per program
    (0: any program), UTC day of the order and currency: order count, revenue."""

    __tablename__ = "referred_revenue_days"

    program_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[int] = mapped_column(BigInteger)


class RewardCostDay(Base):
    """Live (not reversed) rewards per program, UTC day of creation, currency and kind:
    count and summed amount (face value for credit and coupons, points for points)."""

    __tablename__ = "reward_cost_days"

    program_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    rewards: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)


class AdvocateReferralCount(Base):
    """Per program (0: all programs, summed) and advocate, all time: referrals, qualified ones
    (qualified_at set and status qualified/rewarded) and rejected ones. Indexed in the top
    advocates' order, so the first rows are read off the index."""

    __tablename__ = "advocate_referral_counts"
    __table_args__ = (
        Index("ix_advocate_referral_counts_rank", "program_id", "qualified", "signups"),
    )

    program_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    advocate_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signups: Mapped[int] = mapped_column(Integer)
    qualified: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)


class AdvocateReferredRevenue(Base):
    """Per program (0: all programs, summed), advocate and currency, all time: the paid orders
    of the friends of their referrals not rejected (a friend's orders once per such referral)."""

    __tablename__ = "advocate_referred_revenue"

    program_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    advocate_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[int] = mapped_column(BigInteger)


class AdvocateFirst(Base):
    """Per program (0: any program) and advocate: when they got their first code in it
    (code_at) and when their first friend signed up in it (first_at); either may be unset.
    gap_us (time to first referral) is set whenever both are, so its sum and median are read
    off an index.
    Both only ever move earlier (codes and referrals are not deleted), so a writer sets each
    to the earlier of the stored and its own (K-factor: advocates, time to first referral)."""

    __tablename__ = "advocate_firsts"
    __table_args__ = (
        Index("ix_advocate_firsts_code", "program_id", "code_at"),
        Index("ix_advocate_firsts_first", "program_id", "first_at", "gap_us"),
        Index("ix_advocate_firsts_gap", "program_id", "gap_us"),
    )

    program_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    advocate_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # microseconds from code_at to first_at (0 if the referral came first); set with both
    gap_us: Mapped[int | None] = mapped_column(BigInteger)


class CohortAdvocateFirst(Base):
    """AdvocateFirst's any-program rows (program 0) of a segment cohort's stored members: the
    K-factor's advocates and time to first referral under one segment read it as the
    unfiltered figures read AdvocateFirst (services.cohort_firsts keeps it)."""

    __tablename__ = "cohort_advocate_firsts"
    __table_args__ = (
        Index("ix_cohort_advocate_firsts_code", "cohort", "code_at"),
        Index("ix_cohort_advocate_firsts_first", "cohort", "first_at", "gap_us"),
        Index("ix_cohort_advocate_firsts_gap", "cohort", "gap_us"),
    )

    cohort: Mapped[str] = mapped_column(String(40), primary_key=True)
    advocate_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    gap_us: Mapped[int | None] = mapped_column(BigInteger)


class ActivationCount(Base):
    """The activation side's per-day counts (services.activation_aggregates says what each
    `kind` counts and how they stay exact): `kind` names the figure, `program` whose rows
    (0: everyone's; > 0 that program's people; < 0 segment -program's members), `day` the
    UTC day the figure files the row under, `a`/`b`/`c` its keys (level, stage, reason;
    version, step, outcome; site, measure; challenge, status, featured), `n` how many."""

    __tablename__ = "activation_counts"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    program: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0: all; < 0: a segment
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    a: Mapped[str] = mapped_column(String(200), primary_key=True)
    b: Mapped[str] = mapped_column(String(200), primary_key=True)
    c: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
