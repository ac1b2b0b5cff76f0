"""The activation side's per-day counts (table `activation_counts`), and how they stay exact.

One row per (kind, program, day, a, b, c) with a count `n`; a figure over a period sums its
days, so it costs days, steps and sites, not enrolments, messages or entries. `program` 0
counts everyone; a program's id counts only that program's people (code holders and referred
friends, as services.dashboard._scope's program filter); minus a segment's id counts only
that segment's stored members (services.cohorts), so those filters cost days too:

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
 - recruit         a plan's recruits per channel (services.plans._recruited over the plan's
                   period, which is fixed per plan): a plan id, b channel; day: its first day.

How they stay exact. Every write of the rows they count wraps itself in `changing(...)` (or
calls `added(...)` for rows it just inserted), in its own transaction, naming the rows it
touches (enrolments, review asks, invitations, entries): their contribution is taken out
before the write and put back after, recomputed from the rows by the same cohort query the
panel used to run (services.dashboard_activation._cohort), per customer, then added to
program 0 and to each program the customer is one of the people of. The writers: the
playbook runner (services.playbooks._write: the steps, with the messages, codes,
invitations and tasks they made), messages (services.messaging: queued, skipped, links
made, sent, bounced, retried, clicked), challenges (services.challenges: invitation, entry
sent or sent again, review), tasks (services.tasks.record_outcome) and referrals
(services.referrals: a friend's signup, or a rejection or its reversal, moves level 2's
"acted" of the enrolment that issued the code). A customer becoming one of a program's
people (services.programs.code_for, a referral of them) wraps itself in `joining(...)`:
all their counted rows move into that program's counts. Nobody leaves a program's people
(codes and referrals are never deleted). A plan's recruits are recounted per customer
(`recruiting`, and `joining`) when a code or invitation is made or an invitation message is
sent, and for the whole plan when it is applied (its period may have moved).

Segments follow services.cohorts' two hooks. The writers' recount above adds to each
segment the customer is a stored member of (read in the same transaction). A customer the
worker moves into or out of a segment (cohorts._move) has all their counts, recruits included,
added to or taken out of it (`segment_moved`); a segment saved, or every membership judged
again, recounts it from its members (`recount_segment`); a deleted one loses its rows. In
the window before the worker judges the customers written since, a read adds what the dirty
customers the filter selects now count and takes out what the dirty stored members count
(`live=` cohorts.Members: `_live`, a few customers' rows), so the figure is the segment's
members' now. With both a segment and a program, or too many dirty customers to judge live,
the panels read the rows.

Races. PostgreSQL: the customers behind the rows, then the rows, are locked first (FOR NO KEY
UPDATE, in id order; the same customer lock as services.customer_aggregates), so two writers
of one enrolment, or a write and a change of the customer's programs, queue instead of each
counting what it saw; SQLite has one writer. Upserts add to the stored row (ON CONFLICT DO
UPDATE), so writers of different rows never lose a count. A segment's recount and the
writers queue on services.cohorts' lock (cohort_dirty: EXCLUSIVE against the writers' ROW
EXCLUSIVE), so a write counted under the old members is not lost by a recount. `rebuild`
recomputes everything (`advocado dashboard rebuild`, migrations 0018 and 0020).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, literal_column, select, text, union
from sqlalchemy.orm import Session

from advocado.domain import activation as rules
from advocado.services.customer_aggregates import segment_memberships, upsert_counts
from advocado.store.db import as_date, built, utc_day
from advocado.store.models import (
    SEGMENT_COHORT_PREFIX,
    ActivationCount,
    ChallengeEntry,
    ChallengeInvitation,
    CohortMember,
    Customer,
    Enrolment,
    EnrolmentStep,
    Message,
    MessageLink,
    Referral,
    ReferralCode,
)

FUNNEL, STEP, REVIEW = "funnel", "step", "review"
REVIEW_SENT, REVIEW_CLICKED = "review_sent", "review_clicked"
UGC_INVITED, UGC_ENTRY = "ugc_invited", "ugc_entry"
RECRUIT = "recruit"  # a plan id, b channel; day: the plan's first day
REASON = "reason"  # the funnel's stage "reason": c is the skip reason code
ALL_SITES = ""
CHUNK = 900  # ids per IN (...): under SQLite's bound-parameter limit

Key = tuple[str, int, date, str, str, str]  # kind, program (0: everyone), day, a, b, c


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
#
# Each tally groups its rows by `by`: EVERYONE (program 0 only), CUSTOMER (per customer, then
# spread to program 0 and the customer's programs in Python: a write's few rows) or PROGRAM
# (joined to the program people in SQL: the rebuild).

EVERYONE, CUSTOMER, PROGRAM = "everyone", "customer", "program"
# every segment's members (a "segment:<id>" cohort: just that one)
SEGMENTS = SEGMENT_COHORT_PREFIX + "%"
Row = tuple[str, int, date, str, str, str]  # kind, group (program / customer), day, a, b, c


def segment_key(segment_id: int) -> int:
    """The `program` a segment's members are counted under: minus the segment's id."""
    return -int(segment_id)


def _group(value: Any) -> int:
    """A tally's leading column as the counts' group: a cohort name ("segment:12") is that
    segment's key (-12), anything else an id."""
    if isinstance(value, str) and value.startswith(SEGMENT_COHORT_PREFIX):
        return segment_key(int(value.split(":", 1)[1]))
    return int(value)


def _people() -> Any:
    """(customer, program) of every program's people: code holders and referred friends
    (services.dashboard._scope's program filter)."""
    codes = select(ReferralCode.customer_id.label("customer_id"), ReferralCode.program_id)
    friends = select(Referral.referee_id.label("customer_id"), Referral.program_id)
    return union(codes, friends).subquery("people")


def _grouping(query: Any, customer: Any, by: str) -> tuple[Any, list[Any]]:
    """The query joined for `by`, and its leading group column (in the select and group by)."""
    if by == EVERYONE:
        return query, []
    if by == CUSTOMER:
        return query, [customer]
    if by.startswith(SEGMENT_COHORT_PREFIX):  # the stored members of every segment, or of one
        member = CohortMember.cohort.like(SEGMENTS) if by == SEGMENTS else CohortMember.cohort == by
        joined = query.join(CohortMember, and_(CohortMember.customer_id == customer, member))
        return joined, [CohortMember.cohort]
    people = _people()
    return query.join(people, people.c.customer_id == customer), [people.c.program_id]


def _enrolment_tally(session: Session, ids: list[int] | None, by: str) -> Counter[Row]:
    """The step and funnel counts of these enrolments (None: all)."""
    from advocado.services import dashboard, dashboard_activation

    found: Counter[Row] = Counter()
    day = utc_day(session, EnrolmentStep.ran_at)
    keys = [Enrolment.version_id, EnrolmentStep.step, EnrolmentStep.outcome, day]
    base, lead = _grouping(
        select(EnrolmentStep).join(Enrolment, Enrolment.id == EnrolmentStep.enrolment_id),
        Enrolment.customer_id,
        by,
    )
    query = base.with_only_columns(*(lead or [literal_column("0")]), *keys, func.count())
    query = query.group_by(*lead, *keys)
    if ids is not None:
        query = query.where(EnrolmentStep.enrolment_id.in_(ids))
    for g, version_id, step, outcome, d, n in session.execute(query):
        found[(STEP, _group(g), as_date(d), str(version_id), step, outcome)] += int(n)
    everything = dashboard._Scope(None, None, None, None, "")
    levels = dashboard_activation._level_map(session)
    names = ("asked", "skipped", "clicked", "acted", "featured")
    for level in rules.LEVELS:
        # The enrolments go into the cohort query itself: filtered outside, SQLite would
        # build every enrolment's row first.
        cohort = dashboard_activation._cohort(session, everything, level, levels, only=ids)
        if cohort is None:
            continue
        sub = cohort.subquery()
        entered = utc_day(session, sub.c.entered_at)
        base, lead = _grouping(select(sub), sub.c.customer_id, by)
        # One query per level: the skipped rows grouped by their reason too. (Summing
        # "eligible" over those groups is exact when an enrolment has one row per level,
        # the only case the funnel reads these counts: dashboard_activation._one_row_each.)
        reason = case((sub.c.skipped == 1, sub.c.ask_reason), else_=None)
        counted = base.with_only_columns(
            *(lead or [literal_column("0")]),
            entered,
            reason,
            func.count(func.distinct(sub.c.enrolment_id)),
            *(func.sum(sub.c[k]) for k in names),
        )
        for g, d, why, eligible, *counts in session.execute(
            counted.group_by(*lead, entered, reason)
        ):
            day_of = as_date(d)
            found[(FUNNEL, _group(g), day_of, level, "eligible", "")] += int(eligible or 0)
            for name, n in zip(names, counts, strict=True):
                found[(FUNNEL, _group(g), day_of, level, name, "")] += int(n or 0)
            if why is not None:
                code = rules.skip_reason_code(why)
                found[(FUNNEL, _group(g), day_of, level, REASON, code)] += int(counts[1] or 0)
    return found


def _message_tally(session: Session, ids: list[int] | None, by: str) -> Counter[Row]:
    """The review counts of these messages (None: every review ask). Given ids must be review
    asks (the callers check the template): by id alone, SQLite takes the primary key rather
    than scanning the template's index."""
    found: Counter[Row] = Counter()
    mine = Message.template.in_(rules.REVIEW_TEMPLATES) if ids is None else Message.id.in_(ids)
    delivered = case((Message.status.in_(rules.DELIVERED_STATUSES), 1), else_=0)
    day = utc_day(session, Message.created_at)
    messages, lead = _grouping(select(Message), Message.customer_id, by)
    first = lead or [literal_column("0")]
    for g, d, status, n, sent, clicked in session.execute(
        messages.with_only_columns(
            *first,
            day,
            Message.status,
            func.count(),
            func.sum(delivered),
            func.count(Message.clicked_at),
        )  # fmt: skip
        .where(mine)
        .group_by(*lead, day, Message.status)
    ):
        key = (REVIEW, _group(g), as_date(d), ALL_SITES)
        if status == "skipped":
            found[(*key, "skipped", "")] += int(n)
        else:
            found[(*key, "asked", "")] += int(n)
            found[(*key, "delivered", "")] += int(sent or 0)
            found[(*key, "clicked", "")] += int(clicked or 0)
    label = func.coalesce(MessageLink.label, "")
    links, link_lead = _grouping(
        select(MessageLink).join(Message, Message.id == MessageLink.message_id),
        Message.customer_id,
        by,
    )
    for g, d, site, n, sent, clicked in session.execute(
        links.with_only_columns(
            *(link_lead or [literal_column("0")]),
            day,
            label,
            func.count(),
            func.sum(delivered),
            func.count(MessageLink.clicked_at),
        )  # fmt: skip
        .where(mine, Message.status != "skipped")
        .group_by(*link_lead, day, label)
    ):
        key = (REVIEW, _group(g), as_date(d), site)
        found[(*key, "asked", "")] += int(n)
        found[(*key, "delivered", "")] += int(sent or 0)
        found[(*key, "clicked", "")] += int(clicked or 0)
    sent_day = utc_day(session, Message.sent_at)
    for g, d, n in session.execute(
        messages.with_only_columns(*first, sent_day, func.count())
        .where(mine, Message.sent_at.is_not(None))
        .group_by(*lead, sent_day)
    ):
        found[(REVIEW_SENT, _group(g), as_date(d), "", "", "")] += int(n)
    clicked_day = utc_day(session, Message.clicked_at)
    for g, d, n in session.execute(
        messages.with_only_columns(*first, clicked_day, func.count())
        .where(mine, Message.clicked_at.is_not(None), Message.status == "clicked")
        .group_by(*lead, clicked_day)
    ):
        found[(REVIEW_CLICKED, _group(g), as_date(d), "", "", "")] += int(n)
    return found


def _invitation_tally(session: Session, ids: list[int] | None, by: str) -> Counter[Row]:
    found: Counter[Row] = Counter()
    day = utc_day(session, ChallengeInvitation.created_at)
    base, lead = _grouping(select(ChallengeInvitation), ChallengeInvitation.customer_id, by)
    query = base.with_only_columns(
        *(lead or [literal_column("0")]), day, ChallengeInvitation.challenge_id, func.count()
    ).group_by(*lead, day, ChallengeInvitation.challenge_id)
    if ids is not None:
        query = query.where(ChallengeInvitation.id.in_(ids))
    for g, d, challenge_id, n in session.execute(query):
        found[(UGC_INVITED, _group(g), as_date(d), str(challenge_id), "", "")] += int(n)
    return found


def _entry_tally(session: Session, ids: list[int] | None, by: str) -> Counter[Row]:
    found: Counter[Row] = Counter()
    day = utc_day(session, ChallengeEntry.submitted_at)
    featured = case((ChallengeEntry.featured.is_(True), "1"), else_="0")
    keys = [day, ChallengeEntry.challenge_id, ChallengeEntry.status, featured]
    base, lead = _grouping(select(ChallengeEntry), ChallengeEntry.customer_id, by)
    query = base.with_only_columns(*(lead or [literal_column("0")]), *keys, func.count())
    query = query.group_by(*lead, *keys)
    if ids is not None:
        query = query.where(ChallengeEntry.id.in_(ids))
    for g, d, challenge_id, status, star, n in session.execute(query):
        found[(UGC_ENTRY, _group(g), as_date(d), str(challenge_id), status, str(star))] += int(n)
    return found


_TALLIES = {
    "enrolments": (_enrolment_tally, Enrolment),
    "messages": (_message_tally, Message),
    "invitations": (_invitation_tally, ChallengeInvitation),
    "entries": (_entry_tally, ChallengeEntry),
}


def _programs_of(session: Session, customer_ids: set[int]) -> dict[int, set[int]]:
    """The programs each of these customers is one of the people of."""
    ids = bindparam("ids", expanding=True)
    query = built(session, "activation.programs_of", lambda _: union(
        select(ReferralCode.customer_id, ReferralCode.program_id).where(
            ReferralCode.customer_id.in_(ids)
        ),
        select(Referral.referee_id, Referral.program_id).where(Referral.referee_id.in_(ids)),
    ))  # fmt: skip
    found: dict[int, set[int]] = {}
    for chunk in _chunks(customer_ids):
        for customer_id, program_id in session.execute(query, {"ids": chunk}):
            found.setdefault(int(customer_id), set()).add(int(program_id))
    return found


def _segments_of(session: Session, customer_ids: set[int]) -> dict[int, set[int]]:
    """The segments each of these customers is a stored member of (services.cohorts), as
    their keys (`segment_key`)."""
    return {
        int(customer_id): {_group(cohort) for cohort in found}
        for customer_id, found in segment_memberships(session, customer_ids).items()
    }


def _groups_of(session: Session, customer_ids: set[int]) -> dict[int, set[int]]:
    """Each customer's programs and segments (keys: program ids and segment keys)."""
    found = _programs_of(session, customer_ids)
    for customer_id, keys in _segments_of(session, customer_ids).items():
        found.setdefault(customer_id, set()).update(keys)
    return found


def _spread(session: Session, rows: Counter[Row], *, everyone: bool = True) -> Counter[Key]:
    """Per-customer rows to program 0 and each customer's programs and segments; not
    `everyone`: to their programs only (`joining` moves counts into a program)."""
    customers = {g for _kind, g, *_rest in rows}
    programs = (_groups_of if everyone else _programs_of)(session, customers)
    found: Counter[Key] = Counter()
    for (kind, customer, day, a, b, c), n in rows.items():
        if everyone:
            found[(kind, 0, day, a, b, c)] += n
        for program in programs.get(customer, ()):
            found[(kind, program, day, a, b, c)] += n
    return found


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


def _tally(
    session: Session, wanted: dict[str, list[list[int]]], *, lock: bool, everyone: bool = True
) -> Counter[Key]:
    rows: Counter[Row] = Counter()
    for name, chunks in wanted.items():
        tally, model = _TALLIES[name]
        for chunk in chunks:
            if lock:
                _lock(session, model, chunk)
            rows.update(tally(session, chunk, CUSTOMER))
    return _spread(session, rows, everyone=everyone)


def _store(session: Session, delta: dict[Key, int]) -> None:
    rows = [
        {"kind": kind, "program": program, "day": day, "a": a, "b": b, "c": c, "n": n}
        for (kind, program, day, a, b, c), n in sorted(delta.items())
        if n
    ]
    upsert_counts(session, ActivationCount.__table__, rows, counts=("n",))


def _lock_cohorts(session: Session) -> None:
    # The writers' lock of services.cohorts (ROW EXCLUSIVE on cohort_dirty): a segment saved
    # or every membership recomputed (EXCLUSIVE) waits for this write, or it for them, then
    # it reads the new members.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE cohort_dirty IN ROW EXCLUSIVE MODE"))


def _lock_customers(session: Session, ids: Iterable[int | None]) -> None:
    # The same customer lock as customer_aggregates (FOR NO KEY UPDATE, id order): a change
    # of a customer's programs or segments (the worker locks them too) and a write of their
    # rows queue, so neither counts the other half-done.
    _lock_cohorts(session)
    if session.get_bind().dialect.name == "postgresql":
        for chunk in _chunks(ids):
            session.execute(
                select(Customer.id)
                .where(Customer.id.in_(chunk))
                .order_by(Customer.id)
                .with_for_update(key_share=True)
            )


def _owners(session: Session, wanted: dict[str, list[list[int]]]) -> set[int]:
    found: set[int] = set()
    for name, chunks in wanted.items():
        model = _TALLIES[name][1]
        for chunk in chunks:
            found.update(session.scalars(select(model.customer_id).where(model.id.in_(chunk))))
    return found


def _delta(before: Counter[Key], after: Counter[Key]) -> dict[Key, int]:
    delta: dict[Key, int] = dict(after)
    for key, n in before.items():
        delta[key] = delta.get(key, 0) - n
    return delta


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
    _lock_customers(session, _owners(session, wanted))
    before = _tally(session, wanted, lock=True)
    yield
    session.flush()
    _store(session, _delta(before, _tally(session, wanted, lock=False)))


def added(
    session: Session,
    *,
    messages: Iterable[int | None] = (),
    invitations: Iterable[int | None] = (),
    entries: Iterable[int | None] = (),
) -> None:
    """Rows just inserted by the caller's transaction: their counts are added."""
    given = (("messages", messages), ("invitations", invitations), ("entries", entries))
    wanted = {name: list(_chunks(ids)) for name, ids in given}
    wanted = {name: chunks for name, chunks in wanted.items() if chunks}
    if wanted:
        session.flush()
        _lock_customers(session, _owners(session, wanted))
        _store(session, dict(_tally(session, wanted, lock=False)))


def _rows_of(
    session: Session, customer_ids: list[int], names: Iterable[str] | None = None
) -> dict[str, list[list[int]]]:
    """Every row the counts follow of these customers, by kind (`names`: only these)."""
    found: dict[str, list[list[int]]] = {}
    for name, (_tally_of, model) in _TALLIES.items():
        if names is not None and name not in names:
            continue
        where = model.customer_id.in_(customer_ids)
        if model is Message:
            where = where & Message.template.in_(rules.REVIEW_TEMPLATES)
        ids = list(session.scalars(select(model.id).where(where)))
        if ids:
            found[name] = list(_chunks(ids))
    return found


@contextmanager
def joining(session: Session, customer_ids: Iterable[int | None]) -> Iterator[None]:
    """Wraps a write that may make these customers people of a program (a code issued to
    them, a referral of them): their rows' counts move into that program's counts."""
    wanted = sorted({int(i) for i in customer_ids if i is not None})
    if not wanted:
        yield
        return
    session.flush()
    _lock_customers(session, wanted)
    rows = _rows_of(session, wanted)
    before = _tally(session, rows, lock=False, everyone=False) if rows else Counter()
    with recruiting(session, wanted):  # a code is a recruit; a program's recruits
        yield
    if rows:
        session.flush()
        _store(session, _delta(before, _tally(session, rows, lock=False, everyone=False)))


# --- a plan's recruits per channel -------------------------------------------------------


def _program_people(program: int) -> Any:
    in_program = select(ReferralCode.customer_id).where(ReferralCode.program_id == program)
    referred = select(Referral.referee_id).where(Referral.program_id == program)
    return select(in_program.union(referred).subquery().c[0])


def _segment_people(key: int) -> Any:
    return select(CohortMember.customer_id).where(
        CohortMember.cohort == f"{SEGMENT_COHORT_PREFIX}{-key}"
    )


def _recruit_tally(
    session: Session,
    customer_ids: list[int] | None,
    groups: dict[int, set[int]],
    plan_id: int | None = None,
    *,
    every: list[int] | None = None,
) -> Counter[Key]:
    """The plans' recruits per channel of these customers (None: everyone), for everyone (0),
    per program and per segment (`groups`: each customer's keys; with None, every program
    and segment). `every`: only these keys."""
    from advocado.services import dashboard, plans
    from advocado.services.nps import day_bounds
    from advocado.store.models import Plan, Program, Segment

    found: Counter[Key] = Counter()
    query = select(Plan.id, Plan.starts_on, Plan.ends_on)
    if plan_id is not None:
        query = query.where(Plan.id == plan_id)
    if every is None and customer_ids is None:
        every = [
            0,
            *session.scalars(select(Program.id).order_by(Program.id)),
            *(segment_key(i) for i in session.scalars(select(Segment.id).order_by(Segment.id))),
        ]
    elif every is None:
        every = sorted({0}.union(*groups.values()))
    for plan, first, last in session.execute(query).all():
        start, end = day_bounds(first, last)
        for key in every:
            ids: list[int] | None = None
            people = None
            if customer_ids is not None:
                ids = [c for c in customer_ids if not key or key in groups.get(c, ())]
                if not ids:
                    continue
            elif key > 0:
                people = _program_people(key)
            elif key < 0:
                people = _segment_people(key)
            # A segment's recruits are everyone's recruits among its members (no program).
            scope = dashboard._Scope(start, end, people, key if key > 0 else None, "")
            rows = plans._recruited(scope, ids).order_by(None).subquery()
            for channel, n in session.execute(
                select(rows.c.channel, func.count()).group_by(rows.c.channel)
            ):
                found[(RECRUIT, key, first, str(plan), str(channel), "")] += int(n)
    return found


@contextmanager
def recruiting(session: Session, customer_ids: Iterable[int | None]) -> Iterator[None]:
    """Wraps a write that may change whether these customers are a plan's recruits or by
    which channel (a code or challenge invitation made, an invitation message sent)."""
    wanted = sorted({int(i) for i in customer_ids if i is not None})
    if not wanted:
        yield
        return
    session.flush()
    _lock_customers(session, wanted)
    before = _recruit_tally(session, wanted, _groups_of(session, set(wanted)))
    yield
    session.flush()
    after = _recruit_tally(session, wanted, _groups_of(session, set(wanted)))
    _store(session, _delta(before, after))


def recount_plan(session: Session, plan_id: int) -> None:
    """A plan applied (made, or its period moved): its recruits counted again from the rows."""
    session.execute(
        delete(ActivationCount).where(
            ActivationCount.kind == RECRUIT, ActivationCount.a == str(plan_id)
        )
    )
    _lock_cohorts(session)
    _store(session, dict(_recruit_tally(session, None, {}, plan_id)))


# --- segments: a customer entering or leaving one, and the dirty window ---------------------


def _customer_rows(
    session: Session, customer_ids: list[int], names: Iterable[str] | None = None
) -> Counter[Row]:
    """What these customers' rows count, per customer (`names`: only these tallies)."""
    found: Counter[Row] = Counter()
    for name, chunks in _rows_of(session, customer_ids, names).items():
        tally = _TALLIES[name][0]
        for chunk in chunks:
            found.update(tally(session, chunk, CUSTOMER))
    return found


def segment_moved(
    session: Session, segment_id: int, customer_ids: Iterable[int], sign: int
) -> None:
    """Membership hook (services.cohorts, same transaction, customers locked): these customers
    entered (+1) or left (-1) the segment's stored members; their whole counts, recruits
    included, are added to or taken out of the segment's."""
    key = segment_key(segment_id)
    delta: Counter[Key] = Counter()
    for chunk in _chunks(customer_ids):
        for (kind, _customer, day, a, b, c), n in _customer_rows(session, chunk).items():
            delta[(kind, key, day, a, b, c)] += sign * n
        for (kind, _all, day, a, b, c), n in _recruit_tally(session, chunk, {}, every=[0]).items():
            delta[(kind, key, day, a, b, c)] += sign * n
    _store(session, dict(delta))


def recount_segment(session: Session, segment_id: int | None) -> None:
    """A segment's counts (None: every segment's) from its stored members, after a whole
    recompute of its members (services.cohorts.recompute / rebuild)."""
    _lock_cohorts(session)
    if segment_id is None:
        gone = ActivationCount.program < 0
        by, every = SEGMENTS, None
    else:
        gone = ActivationCount.program == segment_key(segment_id)
        by, every = f"{SEGMENT_COHORT_PREFIX}{segment_id}", [segment_key(segment_id)]
    session.execute(delete(ActivationCount).where(gone))
    found: Counter[Key] = Counter()
    for tally, _model in _TALLIES.values():
        found.update(tally(session, None, by))
    if every is None:
        from advocado.store.models import Segment

        every = [segment_key(i) for i in session.scalars(select(Segment.id))]
    if every:
        found.update(_recruit_tally(session, None, {}, every=every))
    _store(session, dict(found))


def forget_segment(session: Session, segment_id: int) -> None:
    """A segment deleted: its counts go with it."""
    session.execute(
        delete(ActivationCount).where(ActivationCount.program == segment_key(segment_id))
    )


_TALLY_OF_KIND = {
    FUNNEL: "enrolments",
    STEP: "enrolments",
    REVIEW: "messages",
    REVIEW_SENT: "messages",
    REVIEW_CLICKED: "messages",
    UGC_INVITED: "invitations",
    UGC_ENTRY: "entries",
}


def _live(
    session: Session, live: Any, kind: str, start: Any, end: Any
) -> Counter[tuple[date, str, str, str]]:
    """What to add to a segment's stored counts of one kind so they are its members' now:
    the dirty matching customers' rows (`live.into`, +) and the dirty stored members' (`live.out`,
    -), from services.cohorts.segment_members."""
    found: Counter[tuple[date, str, str, str]] = Counter()
    if live is None or not (live.into or live.out):
        return found
    low = None if start is None else _as_day(start)
    high = None if end is None else _as_day(end)
    for ids, sign in ((live.into, +1), (live.out, -1)):
        for chunk in _chunks(ids):
            if kind == RECRUIT:
                rows: Counter[Any] = _recruit_tally(session, chunk, {}, every=[0])
            else:
                rows = _customer_rows(session, chunk, [_TALLY_OF_KIND[kind]])
            for (k, _g, day, a, b, c), n in rows.items():
                if (
                    k != kind
                    or (low is not None and day < low)
                    or (high is not None and day >= high)
                ):
                    continue
                found[(day, a, b, c)] += sign * n
    return found


def rebuild(session: Session) -> dict[str, int]:
    """Recompute every activation count from the rows (one transaction). Row counts."""
    session.execute(delete(ActivationCount))
    for tally, _model in _TALLIES.values():
        found: Counter[Key] = Counter()
        for by in (EVERYONE, PROGRAM, SEGMENTS):
            found.update(tally(session, None, by))
        _store(session, dict(found))
    _store(session, dict(_recruit_tally(session, None, {})))
    return {
        "activation_counts": session.scalar(select(func.count()).select_from(ActivationCount)) or 0
    }


def snapshot(session: Session) -> dict[Key, int]:
    """The table as plain data, zero rows left out (tests compare maintained with rebuilt)."""
    return {
        (r.kind, r.program, as_date(r.day), r.a, r.b, r.c): r.n
        for r in session.execute(select(ActivationCount)).scalars().all()
        if r.n
    }


def counts(
    session: Session,
    kind: str,
    start: Any = None,
    end: Any = None,
    *,
    program: int = 0,
    live: Any = None,
) -> list[tuple[date, str, str, str, int]]:
    """The stored rows of one kind whose day is in [start, end) (dates or UTC midnights;
    None: open), of everyone (program 0), of one program's people or of one segment's
    members (`program_of`); `live`: the filter's cohorts.Members, whose dirty customers
    correct a segment's rows (`_live`)."""
    day = ActivationCount.day
    query = select(day, ActivationCount.a, ActivationCount.b, ActivationCount.c, ActivationCount.n)
    query = query.where(ActivationCount.kind == kind, ActivationCount.program == program)
    if start is not None:
        query = query.where(day >= _as_day(start))
    if end is not None:
        query = query.where(day < _as_day(end))
    found: Counter[tuple[date, str, str, str]] = Counter()
    for d, a, b, c, n in session.execute(query):
        found[(as_date(d), a, b, c)] += int(n or 0)
    found.update(_live(session, live, kind, start, end))
    return [(d, a, b, c, n) for (d, a, b, c), n in found.items()]


def totals(
    session: Session,
    kind: str,
    start: Any = None,
    end: Any = None,
    *,
    program: int = 0,
    key: str | None = None,
    live: Any = None,
) -> list[tuple[str, str, str, int]]:
    """As `counts`, summed over the days: (a, b, c, n); `key`: only rows with that `a`."""
    day = ActivationCount.day
    keys = (ActivationCount.a, ActivationCount.b, ActivationCount.c)
    query = select(*keys, func.sum(ActivationCount.n))
    query = query.where(ActivationCount.kind == kind, ActivationCount.program == program)
    if start is not None:
        query = query.where(day >= _as_day(start))
    if end is not None:
        query = query.where(day < _as_day(end))
    if key is not None:
        query = query.where(ActivationCount.a == key)
    query = query.group_by(*keys)
    found: Counter[tuple[str, str, str]] = Counter()
    for a, b, c, n in session.execute(query):
        found[(a, b, c)] += int(n or 0)
    for (_d, a, b, c), n in _live(session, live, kind, start, end).items():
        if key is None or a == key:
            found[(a, b, c)] += n
    return [(a, b, c, n) for (a, b, c), n in found.items()]


def program_of(scope: Any) -> int | None:
    """Which counts answer a dashboard filter: 0 (everyone), a program's id (its people), a
    segment's key (its members: read with `live=scope.cohort`), or None (a segment with a
    program, or too many customers dirty to correct live: the panels read the rows)."""
    if scope.segmented:
        if scope.program_id is not None or scope.cohort is None:
            return None
        return _group(scope.cohort.cohort)
    return 0 if scope.program_id is None else int(scope.program_id)


def _as_day(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value
