"""Selectors of the console's customer pages: search by external id, name or email, and one
customer's whole story (responses with their persona evidence, insights with explanations,
orders, referrals both ways, ledger, coupons, messages with their status history, tasks,
challenge entries). Read only: callers open store.db.read_only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from advocado.services import insights, ledger
from advocado.store.models import (
    Challenge,
    ChallengeEntry,
    Coupon,
    Customer,
    LedgerEntry,
    Message,
    MessageEvent,
    Order,
    Program,
    Referral,
    Response,
    Reward,
    Task,
)

SEARCH_LIMIT = 50
SECTION_LIMIT = 200  # rows per section of the profile (newest first)


class CustomerNotFound(LookupError):
    pass


def search_customers(session: Session, *, query: str, limit: int = SEARCH_LIMIT) -> list[Customer]:
    """Customers whose external id, email or name matches `query`: an exact external id or
    email first, then those starting with it, then names containing it (case-insensitive).
    An empty query lists the newest customers."""
    text = (query or "").strip()
    found = select(Customer).limit(limit)
    if not text:
        return newest_customers(session, limit=limit)
    low = text.lower()
    like = low.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    exact = list(
        session.scalars(
            select(Customer)
            .where(or_(Customer.external_id == text, func.lower(Customer.email) == low))
            .order_by(Customer.id)
        )
    )
    seen = {c.id for c in exact}
    more = session.scalars(
        found.where(
            or_(
                func.lower(Customer.external_id).like(f"{like}%", escape="\\"),
                func.lower(Customer.email).like(f"{like}%", escape="\\"),
                func.lower(Customer.name).like(f"%{like}%", escape="\\"),
            )
        ).order_by(Customer.id)
    )
    return (exact + [c for c in more if c.id not in seen])[:limit]


def newest_customers(
    session: Session, *, limit: int, before_id: int | None = None
) -> list[Customer]:
    """Customers newest first; `before_id` pages on (the export walks every page)."""
    query = select(Customer).order_by(Customer.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Customer.id < before_id)
    return list(session.scalars(query))


def customer_profile(
    session: Session, *, external_id: str, limit: int | None = SECTION_LIMIT
) -> dict[str, Any]:
    """Everything known about one customer, each list newest first and at most `limit` long
    (None: all, as the CSV export wants). CustomerNotFound if none."""
    customer = session.scalar(select(Customer).where(Customer.external_id == external_id))
    if customer is None:
        raise CustomerNotFound(f"no customer {external_id!r} / 没有该客户")
    cid = customer.id
    responses = list(
        session.scalars(
            select(Response)
            .where(Response.customer_id == cid)
            .order_by(Response.submitted_at.desc(), Response.id.desc())
            .limit(limit)
        )
    )
    orders = list(
        session.scalars(
            select(Order)
            .where(Order.customer_id == cid)
            .order_by(Order.placed_at.desc(), Order.id.desc())
            .limit(limit)
        )
    )
    return {
        "customer": customer,
        "insight": insights.customer_insight(session, external_id=external_id),
        "responses": responses,
        "orders": orders,
        "referrals_made": _referrals(session, cid, as_advocate=True, limit=limit),
        "referred_by": _referrals(session, cid, as_advocate=False, limit=limit),
        "balances": {k: v.as_dict() for k, v in ledger.balances(session, cid).items()},
        "ledger": _ledger(session, cid, limit),
        "coupons": list(
            session.scalars(
                select(Coupon)
                .where(Coupon.customer_id == cid)
                .order_by(Coupon.created_at.desc(), Coupon.id.desc())
                .limit(limit)
            )
        ),
        "messages": _messages(session, cid, limit),
        "tasks": list(
            session.scalars(
                select(Task)
                .where(Task.customer_id == cid)
                .order_by(Task.created_at.desc(), Task.id.desc())
                .limit(limit)
            )
        ),
        "entries": [
            {"entry": entry, "challenge": slug}
            for entry, slug in session.execute(
                select(ChallengeEntry, Challenge.slug)
                .join(Challenge, Challenge.id == ChallengeEntry.challenge_id)
                .where(ChallengeEntry.customer_id == cid)
                .order_by(ChallengeEntry.submitted_at.desc(), ChallengeEntry.id.desc())
                .limit(limit)
            )
        ],
    }


def _referrals(
    session: Session, cid: int, *, as_advocate: bool, limit: int | None
) -> list[dict[str, Any]]:
    """Referrals this customer made (the friends) or was brought by (the advocate), with
    status, reason and the rewards they earned."""
    other = aliased(Customer)
    mine = Referral.advocate_id if as_advocate else Referral.referee_id
    theirs = Referral.referee_id if as_advocate else Referral.advocate_id
    rows = session.execute(
        select(Referral, other.external_id, other.name, Program.slug)
        .join(other, other.id == theirs)
        .join(Program, Program.id == Referral.program_id)
        .where(mine == cid)
        .order_by(Referral.signed_up_at.desc(), Referral.id.desc())
        .limit(limit)
    ).all()
    rewards: dict[int, list[Reward]] = {}
    ids = [r[0].id for r in rows]
    if ids:
        for reward in session.scalars(
            select(Reward).where(Reward.referral_id.in_(ids)).order_by(Reward.id)
        ):
            rewards.setdefault(reward.referral_id, []).append(reward)
    return [
        {"referral": referral, "other": ext, "other_name": name or "", "program": slug,
         "rewards": rewards.get(referral.id, [])}
        for referral, ext, name, slug in rows
    ]  # fmt: skip


def _ledger(session: Session, cid: int, limit: int | None) -> list[LedgerEntry]:
    mine = f"customer:{cid}:%"
    return list(
        session.scalars(
            select(LedgerEntry)
            .where(or_(LedgerEntry.credit_account.like(mine), LedgerEntry.debit_account.like(mine)))
            .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
            .limit(limit)
        )
    )


def _messages(session: Session, cid: int, limit: int | None) -> list[dict[str, Any]]:
    messages = list(
        session.scalars(
            select(Message)
            .where(Message.customer_id == cid)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
        )
    )
    history: dict[int, list[MessageEvent]] = {}
    if messages:
        for event in session.scalars(
            select(MessageEvent)
            .where(MessageEvent.message_id.in_([m.id for m in messages]))
            .order_by(MessageEvent.at, MessageEvent.id)
        ):
            history.setdefault(event.message_id, []).append(event)
    return [{"message": m, "events": history.get(m.id, [])} for m in messages]
