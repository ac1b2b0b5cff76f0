"""The points and credit ledger: post, reverse, read balances, spend. Append-only: no row is
ever updated or deleted; balances are derived from the rows (domain/ledger)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain.ledger import Balance, Posting, balance
from advocado.store.models import Customer, LedgerEntry

POINTS = "POINTS"


def account(customer_id: int, asset: str) -> str:
    return f"customer:{customer_id}:{'points' if asset == POINTS else 'credit:' + asset}"


def post(
    session: Session,
    *,
    key: str,
    asset: str,
    debit: str,
    credit: str,
    amount: int,
    available_at: datetime,
    expires_at: datetime | None = None,
    reward_id: int | None = None,
    reverses_id: int | None = None,
    memo: str | None = None,
) -> int | None:
    """One entry (its id), once per key: None if an entry with this key (or reversing the
    same entry) already exists, so a retried cause posts nothing."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(LedgerEntry)
        .values(
            key=key,
            asset=asset,
            debit_account=debit,
            credit_account=credit,
            amount=amount,
            available_at=available_at,
            expires_at=expires_at,
            reward_id=reward_id,
            reverses_id=reverses_id,
            memo=memo,
            created_at=clock.now(),
        )
        .on_conflict_do_nothing()
        .returning(LedgerEntry.id)
    )
    return session.scalar(statement)


def reverse(session: Session, entry: LedgerEntry, *, memo: str) -> int | None:
    """The entry's mirror image, once (reverses_id is unique)."""
    return post(
        session,
        key=f"reverse:{entry.id}",
        asset=entry.asset,
        debit=entry.credit_account,
        credit=entry.debit_account,
        amount=entry.amount,
        available_at=clock.now(),
        reward_id=entry.reward_id,
        reverses_id=entry.id,
        memo=memo,
    )


def postings(session: Session, account_name: str) -> list[Posting]:
    rows = session.scalars(
        select(LedgerEntry).where(
            or_(
                LedgerEntry.credit_account == account_name,
                LedgerEntry.debit_account == account_name,
            )
        )
    )
    found = []
    for row in rows:
        sign = 1 if row.credit_account == account_name else -1
        found.append(
            Posting(
                row.id,
                sign * row.amount,
                row.created_at,
                row.available_at,
                row.expires_at,
                row.reverses_id,
            )
        )
    return found


def balances(session: Session, customer_id: int) -> dict[str, Balance]:
    """Per asset (POINTS, or a currency for store credit)."""
    assets = session.scalars(
        select(LedgerEntry.asset)
        .where(
            or_(
                LedgerEntry.credit_account.like(f"customer:{customer_id}:%"),
                LedgerEntry.debit_account.like(f"customer:{customer_id}:%"),
            )
        )
        .distinct()
    )
    now = clock.now()
    return {
        asset: balance(postings(session, account(customer_id, asset)), now)
        for asset in sorted(assets)
    }


class InsufficientBalance(ValueError):
    pass


def spend(
    session: Session, *, customer_id: int, asset: str, amount: int, key: str, memo: str
) -> int | None:
    """Take `amount` out of the available balance, once per key. The customer row is locked
    first so two spends cannot both see the same balance (PostgreSQL; SQLite's write lock
    already serialises). InsufficientBalance if it is not there."""
    session.execute(
        select(Customer.id).where(Customer.id == customer_id).with_for_update(key_share=True)
    )
    name = account(customer_id, asset)
    available = balance(postings(session, name), clock.now()).available
    if amount <= 0 or amount > available:
        raise InsufficientBalance(f"balance {available} < {amount} / 余额{available}不足{amount}")
    return post(
        session,
        key=key,
        asset=asset,
        debit=name,
        credit="redemptions",
        amount=amount,
        available_at=clock.now(),
        memo=memo,
    )
