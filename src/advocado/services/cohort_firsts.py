"""The K-factor's advocates and time to first referral under a segment filter: advocate_firsts
per segment cohort, and how it stays correct.

cohort_advocate_firsts holds, for every segment cohort and each of its stored members, a copy
of the member's any-program advocate_firsts row (program 0: first code, first referral, the
gap between). Under one segment the figures read it as the unfiltered ones read
advocate_firsts (`cohort = X` instead of `program_id = 0`): a count, a sum and the middle
gap read off an index, no membership probe per advocate. A segment with a program is
computed from the rows (dashboard), so program rows are not copied. Program cohorts are not
kept (a program filter reads advocate_firsts' program rows).

A copied row changes when its advocate_firsts row does or when its advocate enters or
leaves the segment, each in that write's transaction:
 - write hook: services.referral_aggregates._earliest (a code made, a referral created)
   calls `copy` after it wrote the advocates' rows: their program-0 rows are copied to every
   segment cohort each is a stored member of. The writer holds the advocate's customer row
   (a code: cohorts.joined_program; a referral made now: cohort_referrals.settle) or a
   referred friend's (an advocate already the friend's), both of which the worker locks
   before it moves that advocate (services.cohorts.settle_batch), so a copy and a move of
   one advocate queue. Racing writers of one advocate queue on its advocate_firsts row.
 - membership hook: services.cohorts._move_members (`moved`): rows copied in, or deleted.
A segment saved, deleted, or every membership recomputed: `recompute` / `forget`; `rebuild`
(aggregates.REBUILDERS, after cohorts' and referral_aggregates') copies them all.

Reads stay exact in the dirty window: the counts and sums take out the dirty stored members'
rows (Members.out) and add the dirty matching ones' (Members.into), read from
advocate_firsts; the middle gap reads the copy without the dirty members
that count, merged with the rows of those that enter (a UNION ALL read in index order).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, insert, select, text, union_all
from sqlalchemy.orm import Session

from advocado.services import customer_aggregates
from advocado.store.db import built
from advocado.store.models import (
    SEGMENT_COHORT_PREFIX,
    AdvocateFirst,
    CohortAdvocateFirst,
    CohortMember,
)

if TYPE_CHECKING:  # services.cohorts imports this module
    from advocado.services.cohorts import Members

ALL_PROGRAMS = 0  # referral_aggregates.ALL_PROGRAMS (that module imports this one)
_COLUMNS = ("code_at", "first_at", "gap_us")


def _segment(cohort: str | None) -> bool:
    return cohort is None or cohort.startswith(SEGMENT_COHORT_PREFIX)


def _any_program_rows(session: Session, advocate_ids: list[int]) -> dict[int, tuple[Any, ...]]:
    t = AdvocateFirst
    found: dict[int, tuple[Any, ...]] = {}
    for chunk in customer_aggregates._chunks(advocate_ids):
        query = select(t.advocate_id, t.code_at, t.first_at, t.gap_us).where(
            t.program_id == ALL_PROGRAMS, t.advocate_id.in_(chunk)
        )
        for advocate, *values in session.execute(query):
            found[advocate] = tuple(values)
    return found


# --- the write hook (services.referral_aggregates._earliest) --------------------------------


def copy(session: Session, advocate_ids: list[int]) -> None:
    """After these advocates' advocate_firsts rows were written (same transaction): their
    program-0 rows copied to every segment cohort each is a stored member of."""
    ids = sorted(set(advocate_ids))
    if not ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        # the writers' lock (already held by every caller): a segment saved meanwhile waits
        session.execute(text("LOCK TABLE cohort_dirty IN ROW EXCLUSIVE MODE"))
    values = _any_program_rows(session, ids)
    rows = [
        (cohort, advocate, *values[advocate])
        for advocate, found in customer_aggregates.segment_memberships(session, values).items()
        for cohort in sorted(found)
    ]
    if not rows:
        return

    def build(dialect: Any) -> Any:
        statement = dialect.insert(CohortAdvocateFirst.__table__)
        return statement.on_conflict_do_update(
            index_elements=["cohort", "advocate_id"],
            set_={name: statement.excluded[name] for name in _COLUMNS},
        )

    keys = ("cohort", "advocate_id", *_COLUMNS)
    found = [dict(zip(keys, row, strict=True)) for row in sorted(rows)]  # one lock order
    session.connection().execute(built(session, "cohort_advocate_firsts.copy", build), found)


# --- the membership hook (services.cohorts._move_members) ----------------------------------


def moved(session: Session, cohort: str, advocate_ids: list[int], sign: int) -> None:
    """Customers entered (+1: their rows copied in) or left (-1: deleted) a cohort."""
    if not _segment(cohort) or not advocate_ids:
        return
    t = CohortAdvocateFirst
    ids = sorted(advocate_ids)
    if sign < 0:
        for chunk in customer_aggregates._chunks(ids):
            session.execute(delete(t).where(t.cohort == cohort, t.advocate_id.in_(chunk)))
        return
    rows = [
        {"cohort": cohort, "advocate_id": a, **dict(zip(_COLUMNS, v, strict=True))}
        for a, v in sorted(_any_program_rows(session, ids).items())
    ]
    for start in range(0, len(rows), customer_aggregates.CHUNK):
        session.execute(insert(t), rows[start : start + customer_aggregates.CHUNK])


# --- whole recomputes -----------------------------------------------------------------------


def recompute(session: Session, cohort: str | None) -> None:
    """A segment cohort's rows (None: every segment cohort's) from its stored members."""
    t, a, m = CohortAdvocateFirst, AdvocateFirst, CohortMember
    query = delete(t)
    if cohort is not None:
        query = query.where(t.cohort == cohort)
    session.execute(query)
    if not _segment(cohort):
        return
    members = select(m.cohort, a.advocate_id, a.code_at, a.first_at, a.gap_us).join(
        m, m.customer_id == a.advocate_id
    )
    members = members.where(a.program_id == ALL_PROGRAMS)
    if cohort is None:
        members = members.where(m.cohort.like(SEGMENT_COHORT_PREFIX + "%"))
    else:
        members = members.where(m.cohort == cohort)
    session.execute(insert(t).from_select(["cohort", "advocate_id", *_COLUMNS], members))


def forget(session: Session, cohort: str) -> None:
    session.execute(delete(CohortAdvocateFirst).where(CohortAdvocateFirst.cohort == cohort))


def rebuild(session: Session) -> dict[str, int]:
    """Every segment cohort's rows (after cohorts' and referral_aggregates' rebuilds)."""
    session.flush()
    recompute(session, None)
    count = select(func.count()).select_from(CohortAdvocateFirst)
    return {"cohort_advocate_firsts": session.scalar(count) or 0}


def snapshot(session: Session) -> dict[tuple[str, int], tuple[Any, ...]]:
    """The rows as plain data (tests compare maintained with rebuilt)."""
    t = CohortAdvocateFirst
    return {
        (r.cohort, r.advocate_id): (r.code_at, r.first_at, r.gap_us)
        for r in session.scalars(select(t))
    }


# --- reading (services.dashboard, one segment alone) -----------------------------------------


def _between(column: Any, start: datetime | None, end: datetime | None) -> Any:
    return and_(
        True,
        *([] if start is None else [column >= start]),
        *([] if end is None else [column < end]),
    )


def advocates_by(session: Session, members: Members, end: datetime | None) -> int:
    """Members who had a code before `end` (None: ever)."""
    t, a = CohortAdvocateFirst, AdvocateFirst
    query = select(func.count()).where(
        t.cohort == members.cohort, t.code_at.is_not(None), _between(t.code_at, None, end)
    )
    found = int(session.scalar(query) or 0)
    for ids, sign in ((members.into, +1), (members.out, -1)):
        for chunk in customer_aggregates._chunks(ids):
            dirty = select(func.count()).where(
                a.program_id == ALL_PROGRAMS,
                a.advocate_id.in_(chunk),
                a.code_at.is_not(None),
                _between(a.code_at, None, end),
            )
            found += sign * int(session.scalar(dirty) or 0)
    return found


def gaps(session: Session, members: Members, start: datetime | None,
         end: datetime | None) -> tuple[int, int, list[int]]:  # fmt: skip
    """(how many, total, the middle one or two) of the members' gaps (microseconds) whose
    first referral falls in [start, end)."""
    t, a = CohortAdvocateFirst, AdvocateFirst
    where = and_(
        t.cohort == members.cohort, t.gap_us.is_not(None), _between(t.first_at, start, end)
    )
    count, total = session.execute(select(func.count(), func.sum(t.gap_us)).where(where)).one()
    count, total = int(count), int(total or 0)
    # the dirty members whose gap counts: out of the copy, or into it
    counted: dict[int, list[int]] = {+1: [], -1: []}
    for ids, sign in ((members.into, +1), (members.out, -1)):
        for chunk in customer_aggregates._chunks(ids):
            query = select(a.advocate_id, a.gap_us).where(
                a.program_id == ALL_PROGRAMS,
                a.advocate_id.in_(chunk),
                a.gap_us.is_not(None),
                _between(a.first_at, start, end),
            )
            for advocate, gap in session.execute(query):
                counted[sign].append(advocate)
                count += sign
                total += sign * int(gap)
    if not count:
        return 0, 0, []
    kept = select(t.gap_us.label("gap_us")).where(where)
    if counted[-1]:
        kept = kept.where(t.advocate_id.not_in(counted[-1]))
    if counted[+1]:
        entering = select(a.gap_us.label("gap_us")).where(
            a.program_id == ALL_PROGRAMS, a.advocate_id.in_(counted[+1])
        )
        both = union_all(kept, entering).subquery()
        middle_of: Any = select(both.c.gap_us).order_by(both.c.gap_us)
    else:
        middle_of = kept.order_by(t.gap_us)
    middle = session.scalars(middle_of.offset((count - 1) // 2).limit(2 - count % 2))
    return count, total, [int(g) for g in middle]
