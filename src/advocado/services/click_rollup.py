"""Click aggregates for the dashboard, and how they stay exact as clicks arrive.

The tables (store.models):
 - click_day_counts: per code and UTC day, all clicks, human (non-bot) clicks and new visitors;
 - click_program_days: the same summed per program (what figures without a segment read);
 - click_visitors: per code and visitor fingerprint, the first human click (time and id);
 - rollup_watermarks["clicks"]: clicks with id <= last_id are folded into the three above.

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
"""

from __future__ import annotations

from collections import defaultdict
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
from sqlalchemy.orm import Session

from advocado import clock
from advocado.store.db import as_date, read_only, unit_of_work, utc_day
from advocado.store.models import (
    Click,
    ClickDayCount,
    ClickProgramDay,
    ClickVisitor,
    ReferralCode,
    RollupWatermark,
)

WATERMARK = "clicks"
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


def _lock(session: Session) -> int:
    """Takes the roll-up's locks (module doc) and returns the watermark."""
    postgres = session.get_bind().dialect.name == "postgresql"
    dialect: Any = postgresql if postgres else sqlite
    session.execute(
        dialect.insert(RollupWatermark)
        .values(name=WATERMARK, last_id=0, rolled_at=clock.now())
        .on_conflict_do_nothing(index_elements=[RollupWatermark.name])
    )
    query = select(RollupWatermark.last_id).where(RollupWatermark.name == WATERMARK)
    last = session.scalar(query.with_for_update() if postgres else query)
    if postgres:
        session.connection().exec_driver_sql("LOCK TABLE clicks IN SHARE MODE")
    return int(last or 0)


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
    """Adds the deltas to click_day_counts and click_program_days (upserts)."""
    if not deltas:
        return
    programs = dict(
        session.execute(
            select(ReferralCode.id, ReferralCode.program_id).where(
                ReferralCode.id.in_({code for code, _ in deltas})
            )
        ).all()
    )
    per_program: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (code_id, day), (n, human, visitors) in deltas.items():
        total = per_program[(programs[code_id], day)]
        total[0] += n
        total[1] += human
        total[2] += visitors
    for table, key, found in (
        (ClickDayCount, "code_id", deltas),
        (ClickProgramDay, "program_id", per_program),
    ):
        rows = [
            {key: owner, "day": day, "clicks": n, "human_clicks": h, "new_visitors": v}
            for (owner, day), (n, h, v) in sorted(found.items())
        ]
        dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=[key, "day"],
            set_={
                c: getattr(table, c) + getattr(statement.excluded, c)
                for c in ("clicks", "human_clicks", "new_visitors")
            },
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
    for table in (ClickProgramDay, ClickDayCount, ClickVisitor):
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
) -> int:
    """All clicks in the aggregates alone (without the live tail): a cheap size estimate."""
    table: Any = ClickProgramDay if by_program else ClickDayCount
    query = select(func.coalesce(func.sum(table.clicks), 0)).where(
        _inside(table.day, start and _day_of(start), end and _day_of(end))
    )
    if by_program and program_id is not None:
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
    tail = _tail(last, codes)
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
    # one pass over the aggregate rows for both sums (a segment's codes: many rows)
    rolled = (
        select(
            func.coalesce(func.sum(table.clicks), 0).label("clicks"),
            func.coalesce(func.sum(table.new_visitors), 0).label("visitors"),
        )
        .where(*agg)
        .subquery("rolled")
    )
    raw = (
        rolled.c.clicks
        # the period in a CASE, not the WHERE: the tail is read by id, never by time
        + select(
            func.coalesce(func.sum(case((_inside(Click.clicked_at, start, end), 1), else_=0)), 0)
        )
        .where(tail)
        .scalar_subquery()
    )
    unique = rolled.c.visitors + correction
    return select(raw, unique, _watermark()).select_from(rolled)


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
) -> list[Any]:
    """The first human clicks that unique clicks count, in (time, id) order, as rows of `base`
    (a SELECT over clicks and what joins them, with `clicked_at` and `click_id` columns): they
    agree with `click_counts`. The stored first visits in the period, minus those the live
    tail moved earlier, plus the tail's own first visits."""
    last = session.scalar(select(_watermark())) or 0
    firsts = _firsts(_tail(last, codes), few=True)
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
    stored = (
        keyed.join(seen, seen.first_click_id == Click.id)
        .where(
            _inside(seen.first_at, start, end),
            # walk_time: read first visits in time order, skip other codes (`+ 0`: not
            # through the code index), for a scope holding most visits
            True if codes is None else (seen.code_id + 0 if walk_time else seen.code_id).in_(codes),
        )
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
