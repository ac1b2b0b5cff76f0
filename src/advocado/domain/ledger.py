"""Balances derived from an append-only ledger, with holds and expiry. No I/O.

Each posting moves an amount into or out of one account. Postings into the account are lots;
a lot is spendable from `available_at` (the end of its hold) until `expires_at`. A spend takes
from the lots that expire soonest first, so what expires is only what could not have been
used earlier. A reversal cancels its own lot, not the oldest one. An expiry posting (made by
the expiry job once a lot has lapsed) takes what was left of its own lot; "expired" counts
both what such postings took and what has lapsed but was not yet posted, so the balance reads
the same before and after the job runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Posting:
    id: int
    amount: int  # > 0 into the account, < 0 out of it
    at: datetime  # when it was posted
    available_at: datetime
    expires_at: datetime | None = None
    reverses: int | None = None  # id of the posting this one cancels
    expires_lot: int | None = None  # an expiry posting: the lot whose remainder it takes


@dataclass(frozen=True)
class Balance:
    available: int  # spendable now
    pending: int  # still on hold (refund window)
    expired: int  # lapsed unspent

    def as_dict(self) -> dict[str, int]:
        return {"available": self.available, "pending": self.pending, "expired": self.expired}


def _walk(ordered: list[Posting], now: datetime) -> tuple[dict[int, list], int]:
    """The lots (id -> [remaining, posting]) after every posting, and what expiry postings
    took."""
    lots: dict[int, list] = {}
    expired_posted = 0
    for posting in ordered:
        if posting.expires_lot is not None:
            lot = lots.get(posting.expires_lot)
            taken = min(lot[0], -posting.amount) if lot is not None else 0
            if lot is not None:
                lot[0] -= taken
            expired_posted += taken
            continue
        if posting.amount > 0:
            if posting.reverses is not None:
                continue  # a reversed spend: its lot came back below
            lots[posting.id] = [posting.amount, posting]
            continue
        owed = -posting.amount
        if posting.reverses is not None and posting.reverses in lots:
            lot = lots[posting.reverses]
            taken = min(lot[0], owed)
            lot[0] -= taken
            owed -= taken
        usable = [
            lot
            for lot in lots.values()
            if lot[0] > 0
            and lot[1].available_at <= posting.at
            and (lot[1].expires_at is None or posting.at < lot[1].expires_at)
        ]
        usable.sort(key=lambda lot: (lot[1].expires_at is None, lot[1].expires_at or now))
        for lot in usable:
            if owed == 0:
                break
            taken = min(lot[0], owed)
            lot[0] -= taken
            owed -= taken
    return lots, expired_posted


def expiring(postings: Iterable[Posting], now: datetime) -> list[tuple[int, int]]:
    """Lots that have lapsed with something left and no expiry posting yet: (lot id, what is
    left), soonest-expiring first. What the expiry job posts."""
    ordered = sorted(postings, key=lambda p: (p.at, p.id))
    lots, _ = _walk(ordered, now)
    found = [
        (posting.expires_at, lot_id, remaining)
        for lot_id, (remaining, posting) in lots.items()
        if remaining > 0 and posting.expires_at is not None and posting.expires_at <= now
    ]
    return [(lot_id, remaining) for _, lot_id, remaining in sorted(found)]


def balance(postings: Iterable[Posting], now: datetime) -> Balance:
    ordered = sorted(postings, key=lambda p: (p.at, p.id))
    lots, expired_posted = _walk(ordered, now)
    # Reversals of spends give back what the spend took; kept simple: they return as a lot
    # available at once and never expiring (the spend's own lots are already consumed).
    returned = sum(p.amount for p in ordered if p.amount > 0 and p.reverses is not None)
    available = pending = 0
    expired = expired_posted
    for remaining, posting in lots.values():
        if posting.expires_at is not None and posting.expires_at <= now:
            expired += remaining
        elif posting.available_at > now:
            pending += remaining
        else:
            available += remaining
    return Balance(available + returned, pending, expired)


def spendable(postings: Iterable[Posting], now: datetime) -> int:
    return balance(postings, now).available
