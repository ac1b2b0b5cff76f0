"""The activation side's per-day counts (table `activation_counts`), and how they stay exact.

One row per (kind, day, a, b, c) with a count `n`; a figure over a period sums its days, so
it costs days, steps and sites, not enrolments, messages or entries:

 - funnel          day the enrolment entered the level (the cohort's day); a level, b stage
                   (eligible, asked, skipped, clicked, acted, featured, or "reason" with c the
                   skip reason code). Later stages (a click, a friend's signup, an entry, a
                   task's outcome) are filed under the entry day, as the cohort counts them.
 - step            day a playbook step ran; a version id, b step id, c outcome.
 - review          day a review ask was made; a site ("" = the messages), b measure (asked,
                   skipped, delivered, clicked).
 - review_sent     day a review ask was sent (plan goal reviews_asked).
 - review_clicked  day a review ask was clicked, status clicked (plan goal reviews_clicked).
 - ugc_invited     day of a challenge invitation; a challenge id.
 - ugc_entry       day an entry was submitted; a challenge id, b status, c featured (1/0).

How they stay exact: every write of the rows they count wraps itself in `changing(...)`, in
its own transaction, naming what it touches (enrolments, review messages, invitations,
entries). `changing` locks those rows (PostgreSQL: FOR NO KEY UPDATE, in id order, so two
writers of one enrolment queue instead of each counting what it saw), takes their
contribution out before the write and puts it back after, recomputed from the rows by the
same cohort query the panel used to run (services.dashboard_activation._cohort). The writers:
the playbook runner (services.playbooks._write: steps, with the messages, codes, invitations
and tasks they made), messages (services.messaging: queued, skipped, links made, sent,
bounced, retried, clicked), challenges (services.challenges: invitation, entry, review),
tasks (services.tasks.record_outcome) and referrals (services.referrals: a friend's signup
or a status change moves level 2's "acted" of the advocate's enrolments). Upserts add to the
stored row (ON CONFLICT DO UPDATE), so concurrent writers of different rows never lose a
count. `rebuild` recomputes everything (`advocado dashboard rebuild`, the migration 0017).

The counts answer the figures without a segment or program filter; with one, the panels read
the rows (the people filter needs each row's customer).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session

from advocado.domain import activation as rules
from advocado.services.customer_aggregates import _upsert_counts
from advocado.store.db import as_date, utc_day
from advocado.store.models import (
    ActivationCount,
    ChallengeEntry,
    ChallengeInvitation,
    Enrolment,
    EnrolmentStep,
    Message,
    MessageLink,
    ReferralCode,
)

FUNNEL, STEP, REVIEW = "funnel", "step", "review"
REVIEW_SENT, REVIEW_CLICKED = "review_sent", "review_clicked"
UGC_INVITED, UGC_ENTRY = "ugc_invited", "ugc_entry"
REASON = "reason"  # the funnel's stage "reason": c is the skip reason code
ALL_SITES = ""
CHUNK = 900  # ids per IN (...): under SQLite's bound-parameter limit

Key = tuple[str, date, str, str, str]


def _chunks(ids: Iterable[int | None]) -> Iterator[list[int]]:
    wanted = sorted({int(i) for i in ids if i is not None})
    for start in range(0, len(wanted), CHUNK):
        yield wanted[start : start + CHUNK]


def enrolment_of_cause(cause_key: str | None) -> int | None:
    """The enrolment behind a row the playbook runner made ("enrolment:12:step"), else None."""
    if not cause_key or not cause_key.startswith("enrolment:"):
        return None
    number = cause_key.split(":", 2)[1]
    return int(number) if number.isdigit() else None


def enrolments_of_code(session: Session, advocate_id: int | None, code_id: int | None) -> list[int]:
    """The enrolments whose step issued this referral code (their level 2 "acted" follows
    the friends who sign up with it); usually none or one."""
    if advocate_id is None or code_id is None:
        return []
    code = session.scalar(select(ReferralCode.code).where(ReferralCode.id == code_id))
    if code is None:
        return []
    return list(
        session.scalars(
            select(EnrolmentStep.enrolment_id)
            .join(Enrolment, Enrolment.id == EnrolmentStep.enrolment_id)
            .where(Enrolment.customer_id == advocate_id, EnrolmentStep.effect == f"code:{code}")
        )
    )


# --- what a set of rows contributes ----------------------------------------------------------


def _enrolment_tally(session: Session, ids: list[int] | None) -> Counter[Key]:
    """The step and funnel counts of these enrolments (None: all)."""
    from advocado.services import dashboard, dashboard_activation

    found: Counter[Key] = Counter()
    day = utc_day(session, EnrolmentStep.ran_at)
    query = (
        select(Enrolment.version_id, EnrolmentStep.step, EnrolmentStep.outcome, day, func.count())
        .join(Enrolment, Enrolment.id == EnrolmentStep.enrolment_id)
        .group_by(Enrolment.version_id, EnrolmentStep.step, EnrolmentStep.outcome, day)
    )
    if ids is not None:
        query = query.where(EnrolmentStep.enrolment_id.in_(ids))
    for version_id, step, outcome, d, n in session.execute(query):
        found[(STEP, as_date(d), str(version_id), step, outcome)] += int(n)
    everything = dashboard._Scope(None, None, None, None, "")
    levels = dashboard_activation._level_map(session)
    names = ("asked", "skipped", "clicked", "acted", "featured")
    for level in rules.LEVELS:
        cohort = dashboard_activation._cohort(session, everything, level, levels)
        if cohort is None:
            continue
        sub = cohort.subquery()
        entered = utc_day(session, sub.c.entered_at)
        where = True if ids is None else sub.c.enrolment_id.in_(ids)
        for d, eligible, *counts in session.execute(
            select(
                entered,
                func.count(func.distinct(sub.c.enrolment_id)),
                *(func.sum(sub.c[k]) for k in names),
            )
            .where(where)
            .group_by(entered)
        ):
            found[(FUNNEL, as_date(d), level, "eligible", "")] += int(eligible or 0)
            for name, n in zip(names, counts, strict=True):
                found[(FUNNEL, as_date(d), level, name, "")] += int(n or 0)
        for d, reason, n in session.execute(
            select(entered, sub.c.ask_reason, func.count())
            .where(where, sub.c.skipped == 1)
            .group_by(entered, sub.c.ask_reason)
        ):
            code = rules.skip_reason_code(reason)
            found[(FUNNEL, as_date(d), level, REASON, code)] += int(n)
    return found


def _message_tally(session: Session, ids: list[int] | None) -> Counter[Key]:
    """The review counts of these messages (None: all); other templates count nothing."""
    found: Counter[Key] = Counter()
    review = Message.template.in_(rules.REVIEW_TEMPLATES)
    mine = review if ids is None else (review & Message.id.in_(ids))
    delivered = case((Message.status.in_(rules.DELIVERED_STATUSES), 1), else_=0)
    day = utc_day(session, Message.created_at)
    for d, status, n, sent, clicked in session.execute(
        select(
            day, Message.status, func.count(), func.sum(delivered), func.count(Message.clicked_at)
        )
        .where(mine)
        .group_by(day, Message.status)
    ):
        key = (REVIEW, as_date(d), ALL_SITES)
        if status == "skipped":
            found[(*key, "skipped", "")] += int(n)
        else:
            found[(*key, "asked", "")] += int(n)
            found[(*key, "delivered", "")] += int(sent or 0)
            found[(*key, "clicked", "")] += int(clicked or 0)
    label = func.coalesce(MessageLink.label, "")
    for d, site, n, sent, clicked in session.execute(
        select(day, label, func.count(), func.sum(delivered), func.count(MessageLink.clicked_at))
        .join(Message, Message.id == MessageLink.message_id)
        .where(mine, Message.status != "skipped")
        .group_by(day, label)
    ):
        key = (REVIEW, as_date(d), site)
        found[(*key, "asked", "")] += int(n)
        found[(*key, "delivered", "")] += int(sent or 0)
        found[(*key, "clicked", "")] += int(clicked or 0)
    sent_day = utc_day(session, Message.sent_at)
    for d, n in session.execute(
        select(sent_day, func.count()).where(mine, Message.sent_at.is_not(None)).group_by(sent_day)
    ):
        found[(REVIEW_SENT, as_date(d), "", "", "")] += int(n)
    clicked_day = utc_day(session, Message.clicked_at)
    for d, n in session.execute(
        select(clicked_day, func.count())
        .where(mine, Message.clicked_at.is_not(None), Message.status == "clicked")
        .group_by(clicked_day)
    ):
        found[(REVIEW_CLICKED, as_date(d), "", "", "")] += int(n)
    return found


def _invitation_tally(session: Session, ids: list[int] | None) -> Counter[Key]:
    found: Counter[Key] = Counter()
    day = utc_day(session, ChallengeInvitation.created_at)
    query = select(day, ChallengeInvitation.challenge_id, func.count()).group_by(
        day, ChallengeInvitation.challenge_id
    )
    if ids is not None:
        query = query.where(ChallengeInvitation.id.in_(ids))
    for d, challenge_id, n in session.execute(query):
        found[(UGC_INVITED, as_date(d), str(challenge_id), "", "")] += int(n)
    return found


def _entry_tally(session: Session, ids: list[int] | None) -> Counter[Key]:
    found: Counter[Key] = Counter()
    day = utc_day(session, ChallengeEntry.submitted_at)
    featured = case((ChallengeEntry.featured.is_(True), "1"), else_="0")
    query = select(
        day, ChallengeEntry.challenge_id, ChallengeEntry.status, featured, func.count()
    ).group_by(day, ChallengeEntry.challenge_id, ChallengeEntry.status, featured)
    if ids is not None:
        query = query.where(ChallengeEntry.id.in_(ids))
    for d, challenge_id, status, star, n in session.execute(query):
        found[(UGC_ENTRY, as_date(d), str(challenge_id), status, str(star))] += int(n)
    return found


_TALLIES = {
    "enrolments": (_enrolment_tally, Enrolment),
    "messages": (_message_tally, Message),
    "invitations": (_invitation_tally, ChallengeInvitation),
    "entries": (_entry_tally, ChallengeEntry),
}


def _lock(session: Session, model: Any, ids: list[int]) -> None:
    # FOR NO KEY UPDATE: two writers of one enrolment (message, entry…) queue here, so the
    # second one's "before" already holds the first one's write. SQLite has one writer.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(model.id)
            .where(model.id.in_(ids))
            .order_by(model.id)
            .with_for_update(key_share=True)
        )


def _tally(session: Session, wanted: dict[str, list[list[int]]], *, lock: bool) -> Counter[Key]:
    found: Counter[Key] = Counter()
    for name, chunks in wanted.items():
        tally, model = _TALLIES[name]
        for chunk in chunks:
            if lock:
                _lock(session, model, chunk)
            found.update(tally(session, chunk))
    return found


def _store(session: Session, delta: dict[Key, int]) -> None:
    rows = [
        {"kind": kind, "day": day, "a": a, "b": b, "c": c, "n": n}
        for (kind, day, a, b, c), n in sorted(delta.items())
        if n
    ]
    _upsert_counts(session, ActivationCount.__table__, rows, counts=("n",))


@contextmanager
def changing(
    session: Session,
    *,
    enrolments: Iterable[int | None] = (),
    messages: Iterable[int | None] = (),
    invitations: Iterable[int | None] = (),
    entries: Iterable[int | None] = (),
) -> Iterator[None]:
    """Wraps a write that may change what these rows count (rows made by the write itself
    may be left out when `added` is called for them after). Their counts are taken out before
    and put back after, recomputed from the rows, in the caller's transaction."""
    wanted = {
        name: list(_chunks(ids))
        for name, ids in (
            ("enrolments", enrolments),
            ("messages", messages),
            ("invitations", invitations),
            ("entries", entries),
        )
    }
    wanted = {name: chunks for name, chunks in wanted.items() if chunks}
    if not wanted:
        yield
        return
    session.flush()
    before = _tally(session, wanted, lock=True)
    yield
    session.flush()
    after = _tally(session, wanted, lock=False)
    delta: dict[Key, int] = dict(after)
    for key, n in before.items():
        delta[key] = delta.get(key, 0) - n
    _store(session, delta)


def added(
    session: Session,
    *,
    messages: Iterable[int | None] = (),
    invitations: Iterable[int | None] = (),
    entries: Iterable[int | None] = (),
) -> None:
    """Rows just inserted by the caller's transaction: their counts are added."""
    wanted = {
        name: list(_chunks(ids))
        for name, ids in (
            ("messages", messages),
            ("invitations", invitations),
            ("entries", entries),
        )
    }
    wanted = {name: chunks for name, chunks in wanted.items() if chunks}
    if wanted:
        session.flush()
        _store(session, dict(_tally(session, wanted, lock=False)))


def rebuild(session: Session) -> dict[str, int]:
    """Recompute every activation count from the rows (one transaction). Row counts."""
    session.execute(delete(ActivationCount))
    found: Counter[Key] = Counter()
    for tally, _model in _TALLIES.values():
        found.update(tally(session, None))
    _store(session, dict(found))
    return {
        "activation_counts": session.scalar(select(func.count()).select_from(ActivationCount)) or 0
    }


def snapshot(session: Session) -> dict[Key, int]:
    """The table as plain data, zero rows left out (tests compare maintained with rebuilt)."""
    return {
        (r.kind, as_date(r.day), r.a, r.b, r.c): r.n
        for r in session.execute(select(ActivationCount)).scalars().all()
        if r.n
    }


def counts(
    session: Session, kind: str, start: Any = None, end: Any = None
) -> list[tuple[date, str, str, str, int]]:
    """The stored rows of one kind whose day is in [start, end) (dates or times; None: open)."""
    query = select(
        ActivationCount.day, ActivationCount.a, ActivationCount.b, ActivationCount.c,
        func.sum(ActivationCount.n),
    ).where(ActivationCount.kind == kind)  # fmt: skip
    if start is not None:
        query = query.where(ActivationCount.day >= _as_day(start))
    if end is not None:
        query = query.where(ActivationCount.day < _as_day(end))
    query = query.group_by(
        ActivationCount.day, ActivationCount.a, ActivationCount.b, ActivationCount.c
    )
    return [(as_date(d), a, b, c, int(n or 0)) for d, a, b, c, n in session.execute(query)]


def _as_day(value: Any) -> date:
    return value.date() if hasattr(value, "date") and callable(value.date) else value
