"""The points and credit ledger: post, reverse, read balances, spend, expire. Append-only: no
row is ever updated or deleted; balances are derived from the rows (domain/ledger).

Exactly once, by the entry's unique key: a spend is `spend:{customer}:{client key}` (the
caller's idempotency key), an expiry `expire:{lot entry id}`, a reversal `reverse:{entry id}`.
Writers to one customer's account take that customer's row lock first (PostgreSQL; SQLite's
single writer already serialises), so two spends cannot both see the same balance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, String, cast, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain.ledger import Balance, Posting, balance, expiring
from advocado.services import audit
from advocado.store.db import unit_of_work
from advocado.store.models import Customer, LedgerEntry

POINTS = "POINTS"
EXPIRE = "expire:"
EXPIRED_ACCOUNT = "expired"
SPENT_ACCOUNT = "redemptions"
_POST: dict[str, Any] = {}  # the insert of post(), per dialect


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
    name = session.get_bind().dialect.name
    statement = _POST.get(name)
    if statement is None:  # built once: building it cost more than running it
        table = LedgerEntry.__table__
        dialect = postgresql if name == "postgresql" else sqlite
        statement = _POST[name] = (
            dialect.insert(table).on_conflict_do_nothing().returning(table.c.id)
        )
    return session.scalar(
        statement,
        {
            "key": key,
            "asset": asset,
            "debit_account": debit,
            "credit_account": credit,
            "amount": amount,
            "available_at": available_at,
            "expires_at": expires_at,
            "reward_id": reward_id,
            "reverses_id": reverses_id,
            "memo": memo,
            "created_at": clock.now(),
        },
    )


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
        lot = int(row.key.split(":", 1)[1]) if row.key.startswith(EXPIRE) else None
        found.append(
            Posting(
                row.id,
                sign * row.amount,
                row.created_at,
                row.available_at,
                row.expires_at,
                row.reverses_id,
                expires_lot=lot,
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
    def __init__(self, available: int, wanted: int) -> None:
        super().__init__(
            f"amount: {wanted} wanted but only {available} available / "
            f"余额不足：需要{wanted}，可用{available}"
        )
        self.available = available
        self.wanted = wanted
        self.field = "amount"


class SpendError(ValueError):
    """A spend that cannot be made, naming the field and the reason (English / 中文)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _lock_customer(session: Session, customer_id: int) -> None:
    session.execute(
        select(Customer.id).where(Customer.id == customer_id).with_for_update(key_share=True)
    )


def spend(
    session: Session, *, customer_id: int, asset: str, amount: int, key: str, memo: str
) -> int | None:
    """Take `amount` out of the available balance, once per key. The customer row is locked
    first so two spends cannot both see the same balance (PostgreSQL; SQLite's write lock
    already serialises). InsufficientBalance if it is not there."""
    _lock_customer(session, customer_id)
    name = account(customer_id, asset)
    available = balance(postings(session, name), clock.now()).available
    if amount <= 0 or amount > available:
        raise InsufficientBalance(available, amount)
    return post(
        session,
        key=key,
        asset=asset,
        debit=name,
        credit=SPENT_ACCOUNT,
        amount=amount,
        available_at=clock.now(),
        memo=memo,
    )


@dataclass(frozen=True)
class Spent:
    entry_id: int
    customer: str
    asset: str
    amount: int
    key: str
    duplicate: bool
    balance: Balance

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "customer": self.customer,
            "asset": self.asset,
            "amount": self.amount,
            "key": self.key,
            "duplicate": self.duplicate,
            "balance": self.balance.as_dict(),
        }


def asset_of(name: str) -> str:
    """ "points" (any case) is POINTS; anything else is a store-credit currency code."""
    if name.strip().lower() == "points":
        return POINTS
    code = name.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise SpendError(
            "asset", '"points" or a 3-letter currency code / 应为 points 或三位币种代码'
        )
    return code


def spend_balance(
    engine: Engine,
    *,
    customer_external_id: str,
    asset: str,
    amount: int,
    client_key: str,
    memo: str = "",
) -> Spent:
    """Spend points or store credit, once per client key: a retry with the same key answers
    with the first spend (`duplicate`), the same key for a different spend is an error, and
    more than is available is InsufficientBalance (nothing is written)."""
    code = asset_of(asset)
    if amount <= 0:
        raise SpendError("amount", "a positive whole number (points or minor units) / 应为正整数")
    if not client_key or len(client_key) > 150:
        raise SpendError("key", "1 to 150 characters / 1至150个字符")
    with unit_of_work(engine) as session:
        customer_id = session.scalar(
            select(Customer.id).where(Customer.external_id == customer_external_id)
        )
        if customer_id is None:
            raise SpendError("customer", f"no customer {customer_external_id!r} / 客户不存在")
        _lock_customer(session, customer_id)
        key = f"spend:{customer_id}:{client_key}"
        earlier = session.scalar(select(LedgerEntry).where(LedgerEntry.key == key))
        name = account(customer_id, code)
        if earlier is not None:
            if (earlier.asset, earlier.amount) != (code, amount):
                raise SpendError(
                    "key",
                    f"already used for a spend of {earlier.amount} {earlier.asset} / "
                    "该幂等键已用于另一笔消费",
                )
            entry_id, duplicate = earlier.id, True
        else:
            available = balance(postings(session, name), clock.now()).available
            if amount > available:
                raise InsufficientBalance(available, amount)
            posted = post(
                session,
                key=key,
                asset=code,
                debit=name,
                credit=SPENT_ACCOUNT,
                amount=amount,
                available_at=clock.now(),
                memo=memo or None,
            )
            assert posted is not None  # the lock and the read above make the key free
            entry_id, duplicate = posted, False
        after = balance(postings(session, name), clock.now())
    return Spent(entry_id, customer_external_id, code, amount, client_key, duplicate, after)


def expire_due(session: Session, *, now: datetime) -> int:
    """Post the expiry of every lot that lapsed by `now` with something left (soonest first),
    once per lot (key `expire:{lot id}`): running it again, or twice at once, posts nothing
    more. Returns how many entries it posted. For the worker, and `advocado ledger expire`."""
    marker = literal(EXPIRE) + cast(LedgerEntry.id, String)
    done = select(LedgerEntry.key).where(LedgerEntry.key.like(f"{EXPIRE}%"))
    accounts = sorted(
        set(
            session.scalars(
                select(LedgerEntry.credit_account).where(
                    LedgerEntry.expires_at.is_not(None),
                    LedgerEntry.expires_at <= now,
                    LedgerEntry.reverses_id.is_(None),
                    LedgerEntry.credit_account.like("customer:%"),
                    marker.not_in(done),
                )
            )
        )
    )
    posted = 0
    for name in accounts:
        customer_id = int(name.split(":")[1])
        _lock_customer(session, customer_id)
        lots = {row.id: row for row in session.scalars(
            select(LedgerEntry).where(LedgerEntry.credit_account == name)
        )}  # fmt: skip
        for lot_id, remaining in expiring(postings(session, name), now):
            lot = lots[lot_id]
            if post(
                session,
                key=f"{EXPIRE}{lot_id}",
                asset=lot.asset,
                debit=name,
                credit=EXPIRED_ACCOUNT,
                amount=remaining,
                available_at=now,
                reward_id=lot.reward_id,
                memo=f"expired unspent on {lot.expires_at:%Y-%m-%d} / 过期未使用",
            ):
                posted += 1
    return posted


# --- manual corrections (Action.CORRECT_LEDGER) ----------------------------------------------

CORRECTIONS_ACCOUNT = "corrections"
CORRECTION = "correct:"
MAX_CORRECTION = 1_000_000_000
UNITS = ("points", "credit")


@dataclass(frozen=True)
class Corrected:
    entry_id: int
    customer: str
    asset: str
    amount: int  # signed: + adds to the customer's balance, - takes from it
    reason: str
    key: str
    duplicate: bool
    before: Balance
    after: Balance

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "customer": self.customer,
            "asset": self.asset,
            "amount": self.amount,
            "reason": self.reason,
            "key": self.key,
            "duplicate": self.duplicate,
            "balance_before": self.before.as_dict(),
            "balance": self.after.as_dict(),
        }


def _correction_asset(session: Session, customer_id: int, unit: str, currency: str | None) -> str:
    """POINTS, or the store-credit currency: the one given, else the customer's only one."""
    name = (unit or "").strip().lower()
    if name not in UNITS:
        raise SpendError("unit", '"points" or "credit" / 应为 points（积分）或 credit（储值）')
    if name == "points":
        return POINTS
    if currency and currency.strip():
        code = asset_of(currency)
        if code == POINTS:
            raise SpendError("currency", "a 3-letter currency code / 应为三位币种代码")
        return code
    held = [a for a in balances(session, customer_id) if a != POINTS]
    if len(held) != 1:
        raise SpendError(
            "currency",
            "the store-credit currency is needed (the customer holds "
            f"{', '.join(held) or 'none'}) / 请指定储值币种",
        )
    return held[0]


def correct(
    session: Session,
    *,
    customer: str,
    amount: int,
    unit: str,
    reason: str,
    actor: str,
    key: str,
    currency: str | None = None,
) -> Corrected:
    """A manual correction of a customer's points or store credit (by external id), in the
    caller's transaction: one new double-entry row between the customer's account and
    `corrections` (+amount credits the customer, -amount debits), never an edit of an old row.
    Once per key (`correct:{customer id}:{key}`): the same key again answers with the first
    (`duplicate`), the same key for a different correction is an error. A correction may not
    take the available balance below zero (InsufficientBalance names what is available). The
    audit row (before/after balance) is written in the same transaction."""
    text = (reason or "").strip()
    if not text or len(text) > 500:
        raise SpendError("reason", "1 to 500 characters: why the balance is corrected / 请填写原因")
    if not key or not key.strip() or len(key) > 150:
        raise SpendError("key", "1 to 150 characters / 1至150个字符")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
        raise SpendError("amount", "a whole number other than 0 (+ adds, - takes) / 应为非零整数")
    if abs(amount) > MAX_CORRECTION:
        raise SpendError("amount", f"at most {MAX_CORRECTION} either way / 超出上限")
    customer_id = session.scalar(select(Customer.id).where(Customer.external_id == customer))
    if customer_id is None:
        raise SpendError("customer", f"no customer {customer!r} / 客户不存在")
    _lock_customer(session, customer_id)  # before reading: racing corrections see each other
    asset = _correction_asset(session, customer_id, unit, currency)
    name = account(customer_id, asset)
    entry_key = f"{CORRECTION}{customer_id}:{key.strip()}"
    before = balance(postings(session, name), clock.now())
    earlier = session.scalar(select(LedgerEntry).where(LedgerEntry.key == entry_key))
    if earlier is not None:
        signed = earlier.amount if earlier.credit_account == name else -earlier.amount
        if (earlier.asset, signed) != (asset, amount):
            raise SpendError(
                "key",
                f"already used for a correction of {signed:+d} {earlier.asset} / "
                "该幂等键已用于另一笔调整",
            )
        return Corrected(earlier.id, customer, asset, amount, earlier.memo or "", key.strip(),
                         True, before, before)  # fmt: skip
    if amount < 0 and -amount > before.available:
        raise InsufficientBalance(before.available, -amount)
    debit, credit = (CORRECTIONS_ACCOUNT, name) if amount > 0 else (name, CORRECTIONS_ACCOUNT)
    entry_id = post(
        session,
        key=entry_key,
        asset=asset,
        debit=debit,
        credit=credit,
        amount=abs(amount),
        available_at=clock.now(),
        memo=text,
    )
    assert entry_id is not None  # the customer lock and the read above make the key free
    after = balance(postings(session, name), clock.now())
    audit.record(
        session,
        actor=actor,
        entity="ledger",
        entity_id=customer,
        action="correct",
        before={"asset": asset, **before.as_dict()},
        after={"asset": asset, **after.as_dict(), "amount": amount, "reason": text,
               "key": key.strip(), "entry_id": entry_id},
    )  # fmt: skip
    return Corrected(entry_id, customer, asset, amount, text, key.strip(), False, before, after)


def correct_balance(engine: Engine, **arguments: Any) -> Corrected:
    """`correct` in a transaction of its own (for the console, the CLI and the API)."""
    with unit_of_work(engine) as session:
        return correct(session, **arguments)
