"""Click aggregates for the dashboard, and how they stay exact as clicks arrive.

The tables (store.models):
 - click_day_counts: per code and UTC day, all clicks, human (non-bot) clicks and new visitors;
 - click_program_days: the same summed per program (what figures without a segment read);
 - click_visitors: per code and visitor fingerprint, the first human click (time and id);
 - cohort_click_day_counts: the same summed per segment cohort, over the codes whose holder
   (referral_codes.customer_id) is a stored member (what figures under a segment read);
 - rollup_watermarks["clicks"]: clicks with id <= last_id are folded into the tables above.

Unique clicks (the funnel's `unique_clicks`, the K-factor's invitations) in a period are the
visitors whose FIRST human click on a link falls in the period, counted per link: a visitor
of two advocates' links counts for each, and a visitor who first came before the period is
not counted again. Bots never count. So the count over two adjacent periods adds up.

Nothing is added to the redirect: clicks are written as before (services.clicks), and
`roll_up_clicks` folds the clicks above the watermark into the aggregates and moves the
watermark in the same transaction (the worker's tick, `advocado dashboard rollup`). Figures
read aggregates + the live tail (clicks above the watermark: a primary-key range) in ONE
statement, so they are exact and current whether or not the roll-up has run, and a roll-up
committing meanwhile cannot be counted twice (one statement sees one snapshot).

Why the watermark never skips a click: on PostgreSQL an id is taken when the INSERT runs,
not when it commits, so a lower id can still be in flight when a higher one is visible.
The roll-up takes LOCK TABLE clicks IN SHARE MODE: it waits for every in-flight insert to
commit (and holds new ones back until the roll-up commits), so max(id) read after it covers
every id below it. On SQLite there is one writer at a time, so ids commit in order. Two
roll-ups at once: the watermark row is locked (FOR UPDATE on PostgreSQL, the write lock on
SQLite) before anything is read, so the second folds from where the first stopped.

Segment cohorts (services.cohorts keeps the members): a roll-up adds each code's deltas to
every stored cohort of its holder; a holder entering or leaving a segment adds or takes out
their codes' click_day_counts rows (`holders_moved`, called by the cohorts' membership
moves); a segment saved recounts its rows (`recount_cohorts`). Both the move and the recount
lock the watermark row first, as a roll-up does, so a roll-up either sees the new members
or has committed its rows before the move reads them (never neither, never both). A code
issued has no rolled-up clicks yet, so nothing moves then. A read under a segment
(`cohort_click_counts`) takes the stored rows, the live tail on the codes of the members
now, and the rows of the customers not judged yet (Members.into / out), in one statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    Engine,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from advocado import clock
from advocado.services import customer_aggregates
from advocado.store.db import as_date, read_only, unit_of_work, utc_day
from advocado.store.models import (
    SEGMENT_COHORT_PREFIX,
    Click,
    ClickDayCount,
    ClickProgramDay,
    ClickVisitor,
    CohortClickDayCount,
    CohortMember,
    ReferralCode,
    RollupWatermark,
)

WATERMARK = "clicks"
COUNTS = ("clicks", "human_clicks", "new_visitors")
CHUNK = 200_000  # clicks folded per transaction: keeps a catch-up's locks and memory short


@dataclass(frozen=True)
class RollUp:
    """What one roll-up did: folded the clicks with low < id <= high."""

    low: int
    high: int
    clicks: int


def _day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _human() -> Any:
    return case((Click.is_bot.is_(False), 1), else_=0)


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _lock_watermark(session: Session) -> int:
    """Locks the watermark row (roll-ups, and cohort moves and recounts, queue on it) and
    returns the watermark."""
    postgres = _postgres(session)
    dialect: Any = postgresql if postgres else sqlite
    session.execute(
        dialect.insert(RollupWatermark)
        .values(name=WATERMARK, last_id=0, rolled_at=clock.now())
        .on_conflict_do_nothing(index_elements=[RollupWatermark.name])
    )
    query = select(RollupWatermark.last_id).where(RollupWatermark.name == WATERMARK)
    return int(session.scalar(query.with_for_update() if postgres else query) or 0)


def _lock(session: Session) -> int:
    """Takes the roll-up's locks (module doc) and returns the watermark."""
    last = _lock_watermark(session)
    if _postgres(session):
        session.connection().exec_driver_sql("LOCK TABLE clicks IN SHARE MODE")
    return last


def _move(session: Session, high: int) -> None:
    session.execute(
        update(RollupWatermark)
        .where(RollupWatermark.name == WATERMARK)
        .values(last_id=high, rolled_at=clock.now())
    )


def _firsts(where: Any, *, few: bool = False) -> Any:
    """Per (code, fingerprint): the first human click among the clicks `where` selects.
    `few` (the live tail): partition by `code_id + 0`, so SQLite sorts the few rows instead
    of walking the whole code index to get them in order."""
    code = Click.code_id + 0 if few else Click.code_id
    rank = func.row_number().over(
        partition_by=(code, Click.fingerprint), order_by=(Click.clicked_at, Click.id)
    )
    ranked = (
        select(Click.id, Click.code_id, Click.fingerprint, Click.clicked_at, rank.label("rank"))
        .where(where, Click.is_bot.is_(False))
        .subquery("ranked")
    )
    return select(ranked).where(ranked.c.rank == 1).subquery("firsts")


def roll_up_clicks(session: Session, *, limit: int = CHUNK) -> RollUp:
    """Folds the clicks above the watermark (at most `limit` of the ids) into the aggregates
    and moves the watermark, in the caller's transaction (see the module doc)."""
    low = _lock(session)
    newest = session.scalar(select(func.max(Click.id))) or 0
    high = min(newest, low + limit)
    if high <= low:
        return RollUp(low, low, 0)
    in_range = and_(Click.id > low, Click.id <= high)
    # deltas per (code, day): [clicks, human clicks, new visitors]
    deltas: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0, 0])
    day = utc_day(session, Click.clicked_at)
    folded = 0
    for code_id, day_value, n, human in session.execute(
        select(Click.code_id, day, func.count(), func.sum(_human()))
        .where(in_range)
        .group_by(Click.code_id, day)
    ):
        deltas[(code_id, as_date(day_value))][:2] = [int(n), int(human or 0)]
        folded += int(n)
    firsts = _firsts(in_range, few=True)
    seen = ClickVisitor
    new, moved = [], []
    for code_id, print_, at, click_id, before in session.execute(
        select(
            firsts.c.code_id, firsts.c.fingerprint, firsts.c.clicked_at, firsts.c.id, seen.first_at
        ).outerjoin(
            seen, and_(seen.code_id == firsts.c.code_id, seen.fingerprint == firsts.c.fingerprint)
        )
    ):
        row = {
            "code_id": code_id,
            "fingerprint": print_,
            "first_at": at,
            "first_click_id": click_id,
        }
        if before is None:
            new.append(row)
        elif at < before:  # an earlier click arrived late: the first visit moves back
            moved.append(row)
            deltas[(code_id, _day_of(before))][2] -= 1
        else:
            continue
        deltas[(code_id, _day_of(at))][2] += 1
    if new:
        session.execute(insert(ClickVisitor), new)
    if moved:
        session.execute(update(ClickVisitor), moved)
    _add(session, deltas)
    _move(session, high)
    return RollUp(low, high, folded)


def _add(session: Session, deltas: dict[tuple[int, date], list[int]]) -> None:
    """Adds the deltas to click_day_counts, click_program_days and cohort_click_day_counts
    (upserts; each code's to every stored segment cohort of its holder)."""
    if not deltas:
        return
    codes = {code for code, _ in deltas}
    programs = dict(
        session.execute(
            select(ReferralCode.id, ReferralCode.program_id).where(ReferralCode.id.in_(codes))
        ).all()
    )
    cohorts_of: dict[int, list[str]] = defaultdict(list)
    for code_id, cohort in session.execute(
        select(ReferralCode.id, CohortMember.cohort)
        .join(CohortMember, CohortMember.customer_id == ReferralCode.customer_id)
        .where(ReferralCode.id.in_(codes), CohortMember.cohort.like(SEGMENT_COHORT_PREFIX + "%"))
    ):
        cohorts_of[code_id].append(cohort)
    per_program: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0, 0])
    per_cohort: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (code_id, day), values in deltas.items():
        for total in [per_program[(programs[code_id], day)]] + [
            per_cohort[(cohort, day)] for cohort in cohorts_of.get(code_id, ())
        ]:
            for i, value in enumerate(values):
                total[i] += value
    found_by_table: tuple[tuple[Any, str, Any], ...] = (
        (ClickDayCount, "code_id", deltas),
        (ClickProgramDay, "program_id", per_program),
        (CohortClickDayCount, "cohort", per_cohort),
    )
    for table, key, found in found_by_table:
        rows = [
            {key: owner, "day": day, "clicks": n, "human_clicks": h, "new_visitors": v}
            for (owner, day), (n, h, v) in sorted(found.items())
        ]
        dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=[key, "day"],
            set_={c: getattr(table, c) + getattr(statement.excluded, c) for c in COUNTS},
        )
        for start in range(0, len(rows), 5000):
            session.execute(statement, rows[start : start + 5000])


def rebuild_clicks(session: Session, *, upto: int | None = None) -> RollUp:
    """Recomputes the aggregates from every click (with id <= `upto`, if given: the rest is
    left to the next roll-up), in the caller's transaction (the same locks as a roll-up;
    readers keep seeing the old aggregates until it commits)."""
    _lock(session)
    high = session.scalar(select(func.max(Click.id))) or 0
    if upto is not None:
        high = max(0, min(high, upto))
    for table in (CohortClickDayCount, ClickProgramDay, ClickDayCount, ClickVisitor):
        session.execute(delete(table))
    in_range = Click.id <= high
    firsts = _firsts(in_range)
    session.execute(
        insert(ClickVisitor).from_select(
            ["code_id", "fingerprint", "first_at", "first_click_id"],
            select(firsts.c.code_id, firsts.c.fingerprint, firsts.c.clicked_at, firsts.c.id),
        )
    )
    day = utc_day(session, Click.clicked_at)
    visit_day = utc_day(session, ClickVisitor.first_at)
    parts = union_all(
        select(
            Click.code_id.label("code_id"),
            day.label("day"),
            func.count().label("clicks"),
            func.sum(_human()).label("human"),
            literal(0).label("visitors"),
        )
        .where(in_range)
        .group_by(Click.code_id, day),
        select(ClickVisitor.code_id, visit_day, literal(0), literal(0), func.count()).group_by(
            ClickVisitor.code_id, visit_day
        ),
    ).subquery("parts")
    columns = ["code_id", "day", "clicks", "human_clicks", "new_visitors"]
    session.execute(
        insert(ClickDayCount).from_select(
            columns,
            select(
                parts.c.code_id,
                parts.c.day,
                func.sum(parts.c.clicks),
                func.sum(parts.c.human),
                func.sum(parts.c.visitors),
            ).group_by(parts.c.code_id, parts.c.day),
        )
    )
    d = ClickDayCount
    session.execute(
        insert(ClickProgramDay).from_select(
            ["program_id", *columns[1:]],
            select(
                ReferralCode.program_id,
                d.day,
                func.sum(d.clicks),
                func.sum(d.human_clicks),
                func.sum(d.new_visitors),
            )
            .join(ReferralCode, ReferralCode.id == d.code_id)
            .group_by(ReferralCode.program_id, d.day),
        )
    )
    _count_cohorts(session, None)
    _move(session, high)
    total = session.scalar(select(func.coalesce(func.sum(ClickProgramDay.clicks), 0)))
    return RollUp(0, high, int(total or 0))


def catch_up(engine: Engine, *, limit: int = CHUNK) -> RollUp:
    """Rolls up until no click is above the watermark, `limit` ids per transaction. Takes no
    lock when there is nothing to fold (the worker asks every few seconds)."""
    # a Connection (playbooks.simulate runs the worker inside its own transaction) cannot
    # be switched to read-only mid-transaction
    look = read_only(engine) if isinstance(engine, Engine) else unit_of_work(engine)
    with look as session:
        last = session.scalar(select(_watermark())) or 0
        if (session.scalar(select(func.max(Click.id))) or 0) <= last:
            return RollUp(last, last, 0)
    first: RollUp | None = None
    folded = 0
    while True:
        with unit_of_work(engine) as session:
            done = roll_up_clicks(session, limit=limit)
        first = first or done
        folded += done.clicks
        if done.high == done.low:
            return RollUp(first.low, done.high, folded)


def rebuild(engine: Engine) -> RollUp:
    with unit_of_work(engine) as session:
        return rebuild_clicks(session)


# --- segment cohorts (module doc) ----------------------------------------------------------


def _holders_rows(customer_ids: list[int] | None, cohort: str | None) -> Select[Any]:
    """(cohort, day, clicks, human clicks, new visitors): click_day_counts summed per day over
    the codes these customers hold (under `cohort`), or (customer_ids None) per stored
    segment cohort of each code's holder (only `cohort`'s if given)."""
    d, m = ClickDayCount, CohortMember
    sums = (func.sum(d.clicks), func.sum(d.human_clicks), func.sum(d.new_visitors))
    if customer_ids is not None:
        return (
            select(literal(cohort or ""), d.day, *sums)
            .join(ReferralCode, ReferralCode.id == d.code_id)
            .where(ReferralCode.customer_id.in_(customer_ids))
            .group_by(d.day)
        )
    where = m.cohort.like(SEGMENT_COHORT_PREFIX + "%") if cohort is None else m.cohort == cohort
    return (
        select(m.cohort, d.day, *sums)
        .join(ReferralCode, ReferralCode.id == d.code_id)
        .join(m, m.customer_id == ReferralCode.customer_id)
        .where(where)
        .group_by(m.cohort, d.day)
    )


def holders_moved(session: Session, cohort: str, customer_ids: list[int], sign: int) -> None:
    """Membership hook (services.cohorts, same transaction): these customers enter (+1) or
    leave (-1) a segment cohort, so their codes' rolled-up clicks are added or taken out."""
    if not cohort.startswith(SEGMENT_COHORT_PREFIX) or not customer_ids:
        return
    _lock_watermark(session)  # a roll-up running commits first, or waits and sees the move
    for start in range(0, len(customer_ids), customer_aggregates.CHUNK):
        chunk = sorted(customer_ids)[start : start + customer_aggregates.CHUNK]
        rows = [
            {"cohort": cohort, "day": as_date(day), **{
                name: sign * int(value or 0) for name, value in zip(COUNTS, values, strict=True)}}
            for _, day, *values in session.execute(_holders_rows(chunk, cohort))
        ]  # fmt: skip
        rows.sort(key=lambda row: row["day"])  # one lock order: no deadlocks
        customer_aggregates.upsert_counts(
            session, CohortClickDayCount.__table__, rows, counts=COUNTS
        )


def _count_cohorts(session: Session, cohort: str | None) -> None:
    """A segment cohort's rows (None: every segment cohort's) from its stored members and
    click_day_counts (the caller holds the watermark lock)."""
    query = delete(CohortClickDayCount)
    if cohort is not None:
        query = query.where(CohortClickDayCount.cohort == cohort)
    session.execute(query)
    if cohort is not None and not cohort.startswith(SEGMENT_COHORT_PREFIX):
        return
    session.execute(
        insert(CohortClickDayCount).from_select(
            ["cohort", "day", *COUNTS], _holders_rows(None, cohort)
        )
    )


def recount_cohorts(session: Session, cohort: str | None) -> None:
    """A segment saved (its members recomputed) or deleted (no members left): its rows again,
    in the caller's transaction. None: every segment cohort."""
    _lock_watermark(session)
    _count_cohorts(session, cohort)


def rebuild_cohorts(session: Session) -> dict[str, int]:
    """cohort_click_day_counts from click_day_counts and the stored members (after cohorts'
    rebuild: services.aggregates.REBUILDERS)."""
    session.flush()
    recount_cohorts(session, None)
    found = session.scalar(select(func.count()).select_from(CohortClickDayCount))
    return {"cohort_click_day_counts": int(found or 0)}


def cohort_snapshot(session: Session) -> dict[tuple[str, date], tuple[int, int, int]]:
    """cohort_click_day_counts as plain data (tests compare maintained with rebuilt)."""
    c = CohortClickDayCount
    return {
        (cohort, as_date(day)): (int(n), int(h), int(v))
        for cohort, day, n, h, v in session.execute(
            select(c.cohort, c.day, c.clicks, c.human_clicks, c.new_visitors)
        )
        if n or h or v
    }


# --- reading: aggregates + the live tail ---------------------------------------------------


def _watermark() -> Any:
    return (
        select(func.coalesce(func.max(RollupWatermark.last_id), 0))
        .where(RollupWatermark.name == WATERMARK)
        .scalar_subquery()
    )


def _inside(column: Any, start: datetime | None, end: datetime | None) -> Any:
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return and_(True, *conditions)


def _whole_days(*moments: datetime | None) -> bool:
    return all(
        m is None or m.astimezone(UTC) == datetime.combine(_day_of(m), time(), UTC) for m in moments
    )


def click_counts(
    session: Session,
    *,
    start: datetime | None,
    end: datetime | None,
    program_id: int | None,
    codes: Any,
    by_program: bool,
) -> tuple[int, int]:
    """(all clicks, unique clicks as defined in the module doc) on `codes` (a SELECT of code
    ids; None: all) in [start, end). `by_program`: `codes` are exactly the program's (or all)
    codes, so the per-program table answers. One statement: aggregates + the live tail."""
    if not _whole_days(start, end):
        return scan_counts(session, start=start, end=end, codes=codes)
    if codes is not None:  # a CTE used twice: the scope (a segment's members) is worked out once
        codes = select(codes.cte("scope_codes").c[0])
    last = session.scalar(select(_watermark())) or 0
    while True:
        clicks, visitors, seen_last = session.execute(
            _counts(start, end, program_id, codes, by_program, last)
        ).one()
        if seen_last == last:  # else a roll-up committed in between (PostgreSQL): again
            return int(clicks or 0), int(visitors or 0)
        last = seen_last


def rolled_up_clicks(
    session: Session,
    *,
    start: datetime | None,
    end: datetime | None,
    program_id: int | None,
    codes: Any,
    by_program: bool,
    cohort: str | None = None,
) -> int:
    """All clicks in the aggregates alone (without the live tail): a cheap size estimate.
    `cohort`: a segment cohort's stored rows answer (`codes` are its members')."""
    table: Any = ClickProgramDay if by_program else ClickDayCount
    if cohort is not None:
        table = CohortClickDayCount
    query = select(func.coalesce(func.sum(table.clicks), 0)).where(
        _inside(table.day, start and _day_of(start), end and _day_of(end))
    )
    if cohort is not None:
        query = query.where(table.cohort == cohort)
    elif by_program and program_id is not None:
        query = query.where(table.program_id == program_id)
    elif not by_program and codes is not None:
        query = query.where(table.code_id.in_(codes))
    return int(session.scalar(query) or 0)


def _tail(last: int, codes: Any) -> Any:
    """The clicks above the watermark `last`, on `codes`. The watermark is written into the
    SQL (a bound parameter would be planned as "a third of the table"), and `code_id + 0`
    keeps the planner from reading the tail through the code index (all of a program's
    clicks) instead of the primary-key range."""
    above = Click.id > bindparam("watermark", last, literal_execute=True)
    return above if codes is None else and_(above, (Click.code_id + 0).in_(codes))


def _counts(
    start: datetime | None,
    end: datetime | None,
    program_id: int | None,
    codes: Any,
    by_program: bool,
    last: int,
) -> Select[Any]:
    """(clicks, unique clicks, the watermark) in one statement, so in one snapshot."""
    table: Any = ClickProgramDay if by_program else ClickDayCount
    agg = [_inside(table.day, start and _day_of(start), end and _day_of(end))]
    if by_program and program_id is not None:
        agg.append(table.program_id == program_id)
    elif not by_program and codes is not None:
        agg.append(table.code_id.in_(codes))
    # one pass over the aggregate rows for both sums (a segment's codes: many rows)
    rolled = select(table.clicks.label("clicks"), table.new_visitors.label("visitors")).where(*agg)
    return _with_tail(rolled, _tail(last, codes), start, end)


def _with_tail(rolled: Select[Any], tail: Any, start: datetime | None,
               end: datetime | None) -> Select[Any]:  # fmt: skip
    """(clicks, unique clicks, the watermark): the sums of `rolled`'s (clicks, visitors) rows
    (aggregates of the period) plus the live tail (`tail`: the clicks above the watermark in
    scope), in one statement, so in one snapshot."""
    firsts = _firsts(tail, few=True)
    seen = ClickVisitor
    at, before = firsts.c.clicked_at, seen.first_at
    earlier = before.is_(None) | (at < before)
    gained = and_(earlier, _inside(at, start, end))
    lost = and_(before.is_not(None), at < before, _inside(before, start, end))
    correction = (
        select(func.coalesce(func.sum(case((gained, 1), else_=0) - case((lost, 1), else_=0)), 0))
        .select_from(firsts)
        .outerjoin(
            seen, and_(seen.code_id == firsts.c.code_id, seen.fingerprint == firsts.c.fingerprint)
        )
        .scalar_subquery()
    )
    rows = rolled.subquery("rows")
    summed = select(
        func.coalesce(func.sum(rows.c.clicks), 0).label("clicks"),
        func.coalesce(func.sum(rows.c.visitors), 0).label("visitors"),
    ).subquery("rolled")
    raw = (
        summed.c.clicks
        # the period in a CASE, not the WHERE: the tail is read by id, never by time
        + select(
            func.coalesce(func.sum(case((_inside(Click.clicked_at, start, end), 1), else_=0)), 0)
        )
        .where(tail)
        .scalar_subquery()
    )
    unique = summed.c.visitors + correction
    return select(raw, unique, _watermark()).select_from(summed)


def held_by(members: Any) -> Callable[[Any], Any]:
    """SQL test of a code id column: its holder is a member of `members` (a
    services.cohorts.Members) now. An index probe per row tested: for the live tail and pages
    walked in time order, not for gathering every member's codes."""

    code = aliased(ReferralCode)  # its own: the outer query may join referral_codes too

    def held(code_id: Any) -> Any:
        return (
            select(code.id)
            .where(code.id == code_id, members.holds(code.customer_id))
            .correlate_except(code)
            .exists()
        )

    return held


def cohort_click_counts(
    session: Session, *, start: datetime | None, end: datetime | None, members: Any
) -> tuple[int, int]:
    """`click_counts` on the codes held by a segment's members now (`members`: a
    services.cohorts.Members of a segment cohort): the cohort's stored rows, plus the rows of
    its customers not judged yet (into: added, out: taken out), plus the live tail on the
    members' codes. One statement per try, as `click_counts`."""
    if not _whole_days(start, end):
        codes = select(ReferralCode.id).where(ReferralCode.customer_id.in_(members.ids))
        return scan_counts(session, start=start, end=end, codes=codes)
    days = (start and _day_of(start), end and _day_of(end))
    c = CohortClickDayCount
    parts = [
        select(c.clicks.label("clicks"), c.new_visitors.label("visitors")).where(
            c.cohort == members.cohort, _inside(c.day, *days)
        )
    ]
    into, out = sorted(set(members.into)), sorted(set(members.out))
    if into or out:  # one in both (judged and still a member) is added and taken out
        holder = ReferralCode.customer_id
        sign: Any = literal(0)
        if into:
            sign = sign + case((holder.in_(into), 1), else_=0)
        if out:
            sign = sign - case((holder.in_(out), 1), else_=0)
        d = ClickDayCount
        parts.append(
            select((sign * d.clicks).label("clicks"), (sign * d.new_visitors).label("visitors"))
            .join(ReferralCode, ReferralCode.id == d.code_id)
            .where(holder.in_(sorted(set(into) | set(out))), _inside(d.day, *days))
        )
    rolled: Any = parts[0] if len(parts) == 1 else union_all(*parts)
    if len(parts) > 1:
        rolled = select(rolled.subquery("parts"))
    held = held_by(members)
    last = session.scalar(select(_watermark())) or 0
    while True:
        tail = and_(_tail(last, None), held(Click.code_id))
        clicks, visitors, seen_last = session.execute(_with_tail(rolled, tail, start, end)).one()
        if seen_last == last:  # else a roll-up committed in between (PostgreSQL): again
            return int(clicks or 0), int(visitors or 0)
        last = seen_last


def scan_counts(
    session: Session, *, start: datetime | None, end: datetime | None, codes: Any
) -> tuple[int, int]:
    """The same figures from the clicks alone (the reference the tests hold the aggregates
    to, and what a period that is not whole UTC days reads)."""
    in_codes = True if codes is None else Click.code_id.in_(codes)
    raw = session.scalar(
        select(func.count())
        .select_from(Click)
        .where(in_codes, _inside(Click.clicked_at, start, end))
    )
    firsts = _firsts(in_codes)
    unique = session.scalar(
        select(func.count()).select_from(firsts).where(_inside(firsts.c.clicked_at, start, end))
    )
    return int(raw or 0), int(unique or 0)


def first_visits(
    session: Session,
    base: Select[Any],
    *,
    start: datetime | None,
    end: datetime | None,
    codes: Any,
    limit: int | None,
    walk_time: bool = False,
    held: Callable[[Any], Any] | None = None,
) -> list[Any]:
    """The first human clicks that unique clicks count, in (time, id) order, as rows of `base`
    (a SELECT over clicks and what joins them, with `clicked_at` and `click_id` columns): they
    agree with `click_counts`. The stored first visits in the period, minus those the live
    tail moved earlier, plus the tail's own first visits. `held` (a segment's: `held_by`)
    tests each code of the tail, and of a time walk, instead of gathering `codes`."""
    last = session.scalar(select(_watermark())) or 0
    tail = _tail(last, codes) if held is None else and_(_tail(last, None), held(Click.code_id))
    firsts = _firsts(tail, few=True)
    seen = ClickVisitor
    added, dropped = [], set()
    for code_id, print_, at, click_id, before in session.execute(
        select(
            firsts.c.code_id, firsts.c.fingerprint, firsts.c.clicked_at, firsts.c.id, seen.first_at
        ).outerjoin(
            seen, and_(seen.code_id == firsts.c.code_id, seen.fingerprint == firsts.c.fingerprint)
        )
    ):
        if before is not None and at >= before:
            continue
        if before is not None and _between(before, start, end):
            dropped.add((code_id, print_))
        if _between(at, start, end):
            added.append((at, click_id))
    added.sort()
    if limit is not None:
        added = added[:limit]  # a page needs no more of them
    keyed = base.add_columns(Click.code_id.label("_code"), Click.fingerprint.label("_print"))
    # walk_time: read first visits in time order, skip other codes (`+ 0`: not through the
    # code index; `held`: a probe per visit walked), for a scope holding most visits
    if codes is None:
        in_scope: Any = True
    elif walk_time and held is not None:
        in_scope = held(seen.code_id)
    else:
        in_scope = (seen.code_id + 0 if walk_time else seen.code_id).in_(codes)
    stored = (
        keyed.join(seen, seen.first_click_id == Click.id)
        .where(_inside(seen.first_at, start, end), in_scope)
        .order_by(seen.first_at, seen.first_click_id)
    )
    if limit is not None:
        # enough stored rows that `limit` remain after dropping (a visit both stored and
        # in `added` is the same row: a roll-up in between; kept once below)
        stored = stored.limit(limit + len(dropped))
    rows = {}
    for row in session.execute(stored):
        if (row._code, row._print) not in dropped:
            rows[(row._code, row._print)] = row
    if added:
        ids = [click_id for _, click_id in added]
        for row in session.execute(keyed.where(Click.id.in_(ids))):
            rows[(row._code, row._print)] = row  # a roll-up in between: the same visit
    found = sorted(rows.values(), key=lambda r: (r.clicked_at, r.click_id))
    return found if limit is None else found[:limit]


def _between(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or moment >= start) and (end is None or moment < end)
