"""The dashboard's activation figures (issue 6): the four-level funnel (eligible -> asked ->
clicked -> acted, domain.activation says what each means per level), each playbook step's
enrolments, the level-1 review asks per review site, and the UGC challenges. Each figure is a
Panel with a drill-down (registered in services.dashboard's PANELS / DRILLS), so the console,
the JSON API and the CSV read the same function.

The figures (no filter, a period, a program, a segment) sum `activation_counts` over the
period's days (services.activation_aggregates keeps them exact, in the writers' transactions,
by running `_cohort` below on the rows a write touches; under a segment, corrected for the
customers written since the worker judged them); a segment with a program, and the
drill-downs, read the rows: enrolment steps by step and time (ix_enrolment_steps_step_ran),
messages by template and time (ix_messages_template_created), links by message, invitations
and entries by challenge. The effect of a step ("message:12", "code:AB12", "invitation:tok",
"task:4", written by the playbook runner) leads to its message, code, invitation or task by
their unique keys. A drill-down page of the funnel or the steps walks the steps in time order
on an index (ix_enrolment_steps_step_ran, ix_enrolment_steps_ran_at), looks up each row's
enrolment, customer and filter (the segment's or program's members probed by key) and stops
after the page; its CSV is the same walk to the end.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session, aliased

from advocado.domain import activation as rules
from advocado.domain import dashboard as dashboard_rules
from advocado.domain.dashboard import Filters
from advocado.domain.records import FieldError
from advocado.services import activation_aggregates as aggregates
from advocado.store.db import as_date, utc_day
from advocado.store.models import (
    Challenge,
    ChallengeEntry,
    ChallengeInvitation,
    CohortMember,
    Customer,
    Enrolment,
    EnrolmentStep,
    Message,
    MessageLink,
    Playbook,
    PlaybookVersion,
    Referral,
    ReferralCode,
    Task,
)

if TYPE_CHECKING:
    from advocado.services.dashboard import Panel, _Scope


def _base() -> Any:
    # services.dashboard registers this module's functions: imported when called, not at
    # import time, so either module may be imported first.
    from advocado.services import dashboard

    return dashboard


def _panel(name: str, columns: list[str], rows: list[dict[str, Any]], **summary: Any) -> Panel:
    return _base().Panel(name, columns, rows, summary)


def _scope(session: Session, f: Filters) -> _Scope:
    return _base()._scope(session, f)


def _between(column: Any, scope: _Scope) -> Any:
    return _base()._between(column, scope)


def _in_customers(column: Any, scope: _Scope) -> Any:
    return _base()._in_customers(column, scope)


def _people_probed(column: Any, scope: _Scope) -> Any:
    """The people filter tested per row walked (the cohort's key probed by index), for a walk
    that stops after a page: not every member gathered first. Both a segment and a program
    (no one cohort): the members' ids."""
    if scope.cohort is not None:
        return scope.cohort.holds(column)
    return _in_customers(column, scope)


def _effect_id(column: Any, prefix: str) -> Any:
    """The number in an effect like "message:12" (NULL when the effect is another kind)."""
    return case(
        (column.like(f"{prefix}:%"), cast(func.substr(column, len(prefix) + 2), Integer)),
        else_=None,
    )


def _effect_text(column: Any, prefix: str) -> Any:
    return func.substr(column, len(prefix) + 2)


def _iso(value: Any) -> str:
    return (
        value.isoformat()
        if isinstance(value, datetime | date)
        else ("" if value is None else str(value))
    )


# --- which steps are which level ------------------------------------------------------------


def _versions(session: Session) -> list[tuple[int, str, int, list[tuple[str, str, Any]]]]:
    """Every playbook version: (version id, playbook name, version, steps as (id, action,
    params)). Versions are few and never change."""
    from advocado.services.playbooks import spec_of

    found = []
    rows = session.execute(
        select(PlaybookVersion, Playbook.name)
        .join(Playbook, Playbook.id == PlaybookVersion.playbook_id)
        .order_by(Playbook.name, PlaybookVersion.version)
    ).all()
    for version, name in rows:
        spec = spec_of(version)
        steps = [(s.id, s.action, s.params) for s in spec.steps]
        found.append((version.id, name, version.version, steps))
    return found


LevelMap = dict[str, list[tuple[int, rules.LevelSteps]]]


def _level_map(session: Session) -> LevelMap:
    """Per level: the (version id, its entry and ask steps) of every version that has it."""
    by: LevelMap = defaultdict(list)
    for version_id, _name, _number, steps in _versions(session):
        for found in rules.level_steps(steps):
            by[found.level].append((version_id, found))
    return by


# --- the funnel per level -------------------------------------------------------------------


def _steps_elsewhere(session: Session, versions: list[tuple[int, rules.LevelSteps]]) -> bool:
    """Whether a version without the level has a step with one of the level's step ids (then
    the step id alone does not say the level: the enrolment's version must be read)."""
    mine = {version_id for version_id, _steps in versions}
    ids = {s for _v, steps in versions for s in (*steps.entry, *steps.ask)}
    for version_id, _name, _number, steps in _versions(session):
        if version_id in mine:
            continue
        if any(step_id in ids for step_id, _action, _params in steps):
            return True
    return len({steps for _v, steps in versions}) > 1  # versions differ: read the version


def _cohort(
    session: Session,
    scope: _Scope,
    level: str,
    levels: LevelMap | None = None,
    *,
    lean: bool = False,
    only: list[int] | None = None,
    walk: bool = False,
    stage: str = "eligible",
) -> Select[Any] | None:
    """One row per enrolment that entered `level` in the period, with what became of it:
    asked, skipped (and why), clicked, acted, featured (flags 0/1) and the ids behind them.
    None when no playbook version has the level. `lean` (counting, no drill-down): leaves
    out the enrolment when nothing needs it (no customer filter, and the step ids alone say
    the level), which saves a lookup per row. `only`: just these enrolments (what one write
    touched: services.activation_aggregates). `walk` (a drill-down page, which walks the entry
    steps in time order and stops): the enrolment and the people filter looked up per row.
    `stage` other than eligible: only the rows at that stage (asked, skipped …; None if
    the level has no such stage)."""
    versions = (levels if levels is not None else _level_map(session)).get(level)
    if not versions:
        return None
    lean = lean and scope.customers is None and not _steps_elsewhere(session, versions)
    entry = aliased(EnrolmentStep, name="entry")
    # L1 and L4 ask at the step that makes them eligible: the same row, no second lookup.
    same = all(set(steps.entry) == set(steps.ask) for _v, steps in versions)
    ask = entry if same else aliased(EnrolmentStep, name="ask")
    entered = []
    asked_at = []
    for version_id, steps in versions:
        # A separate entry step (the code, the invitation) counts only when it happened.
        separate = [s for s in steps.entry if s not in steps.ask]
        entry_ok = entry.step.in_(steps.entry)
        if separate:
            entry_ok = and_(entry_ok, or_(entry.step.in_(steps.ask), entry.outcome != "skipped"))
        version = true() if lean else Enrolment.version_id == version_id
        entered.append(and_(version, entry_ok))
        asked_at.append(and_(version, ask.step.in_(steps.ask)))
    query = select(
        entry.enrolment_id.label("enrolment_id"),
        entry.step.label("step"),
        entry.ran_at.label("entered_at"),
        entry.effect.label("entry_effect"),
        ask.outcome.label("ask_outcome"),
        ask.reason.label("ask_reason"),
    ).where(
        entry.step.in_(sorted({s for _v, steps in versions for s in steps.entry})),
        or_(*entered),
        _between(entry.ran_at, scope),
    )
    if only is not None:
        query = query.where(entry.enrolment_id.in_(only))
    if not lean:
        query = query.add_columns(Enrolment.customer_id.label("customer_id"))
        # Walking: "+ 0" keeps the planner from reading every enrolment first (SQLite would,
        # then sort the whole cohort).
        enrolment = entry.enrolment_id + 0 if walk else entry.enrolment_id
        query = query.join(Enrolment, Enrolment.id == enrolment)
        people = _people_probed if walk else _in_customers
        query = query.where(people(Enrolment.customer_id, scope))
    if not same:
        query = query.outerjoin(ask, and_(ask.enrolment_id == entry.enrolment_id, or_(*asked_at)))
    skipped = ask.outcome == "skipped"
    never = false()  # a stage the level does not have
    if level == "L4":
        task_id = _effect_id(entry.effect, "task")
        query = query.outerjoin(Task, Task.id == task_id)
        asked = Task.done.is_(True)
        clicked = never
        acted = and_(Task.done.is_(True), Task.outcome.in_(rules.POSITIVE_TASK_OUTCOMES))
        detail = Task.outcome
        skipped = never
        message_id = literal(None, Integer)
        message_status = literal(None, String)
        clicked_at = literal(None)
        ask_effect = entry.effect
    else:
        message_id = _effect_id(ask.effect, "message")
        query = query.outerjoin(Message, Message.id == message_id)
        asked = and_(ask.id.is_not(None), ask.outcome != "skipped")
        clicked = Message.clicked_at.is_not(None)
        message_status, clicked_at, ask_effect = Message.status, Message.clicked_at, ask.effect
        detail = literal(None, String)
        acted = never
        if level == "L2":
            # The code the step issued (by its unique code); a friend's signup with it comes
            # after the step by construction (the code did not exist before).
            query = query.outerjoin(
                ReferralCode, ReferralCode.code == _effect_text(entry.effect, "code")
            )
            first = (
                select(func.min(Referral.signed_up_at))
                .where(
                    Referral.advocate_id == ReferralCode.customer_id,  # indexed
                    Referral.code_id == ReferralCode.id,
                    Referral.status != rules.REJECTED_REFERRAL,
                )
                .scalar_subquery()
            )
            acted = and_(asked, first.is_not(None))  # nested: acted is among the asked
            detail = cast(first, String)
        elif level == "L3":
            query = query.outerjoin(
                ChallengeInvitation,
                ChallengeInvitation.token == _effect_text(entry.effect, "invitation"),
            ).outerjoin(ChallengeEntry, ChallengeEntry.invitation_id == ChallengeInvitation.id)
            acted = and_(asked, ChallengeEntry.id.is_not(None))
            detail = ChallengeEntry.status
    # Only L3 has entries; featured ones are among the acted.
    featured = and_(acted, ChallengeEntry.featured.is_(True)) if level == "L3" else never

    def flag(condition: Any) -> Any:
        return case((condition, 1), else_=0)

    stages = {"asked": asked, "skipped": skipped, "clicked": clicked, "acted": acted,
              "featured": featured}  # fmt: skip
    if stage in stages:  # a plain condition, which PostgreSQL's statistics can estimate
        if stages[stage] is never:
            return None
        query = query.where(stages[stage])
    return query.add_columns(
        flag(asked).label("asked"),
        flag(skipped).label("skipped"),
        flag(clicked).label("clicked"),
        flag(acted).label("acted"),
        flag(featured).label("featured"),
        message_id.label("message_id"),
        message_status.label("message_status"),
        clicked_at.label("clicked_at"),
        ask_effect.label("ask_effect"),
        detail.label("acted_detail"),
    )


def _level_stats(
    session: Session, scope: _Scope, level: str, levels: LevelMap
) -> tuple[dict[str, int], dict[str, int]]:
    """A level's counts, then its skipped asks per reason code. Two queries, so the first
    (every row of the cohort) reads only indexed columns of the step and never its reason."""
    cohort = _cohort(session, scope, level, levels, lean=True)
    if cohort is None:
        return {}, {}
    sub = cohort.subquery()
    names = ("asked", "skipped", "clicked", "acted", "featured")
    row = session.execute(
        select(
            func.count(func.distinct(sub.c.enrolment_id)),
            *(func.coalesce(func.sum(sub.c[k]), 0) for k in names),
        )
    ).one()
    counts = {k: int(v or 0) for k, v in zip(("eligible", *names), row, strict=True)}
    reasons: dict[str, int] = defaultdict(int)
    if counts["skipped"]:
        for reason, n in session.execute(
            select(sub.c.ask_reason, func.count())
            .where(sub.c.skipped == 1)
            .group_by(sub.c.ask_reason)
        ):
            reasons[rules.skip_reason_code(reason)] += int(n)
    return counts, dict(reasons)


def _one_row_each(levels: LevelMap) -> bool:
    """Whether the cohort has one row per enrolment and level (one entry step, at most one
    ask step per level in every version): then "eligible" per day adds up over a period."""
    return all(
        len(steps.entry) == 1 and (set(steps.entry) == set(steps.ask) or len(steps.ask) <= 1)
        for versions in levels.values()
        for _version, steps in versions
    )


def _stored_funnel(
    session: Session, scope: _Scope, levels: LevelMap
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]] | None:
    """The funnel's counts and skip reasons per level from activation_counts (cost: days),
    or None when they cannot answer exactly (a segment, or a version with two entry or ask
    steps of one level, where summing days would count an enrolment twice)."""
    program = aggregates.program_of(scope)
    if program is None or not _one_row_each(levels):
        return None
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for level, stage, code, n in aggregates.totals(
        session, aggregates.FUNNEL, scope.start, scope.end, program=program, live=scope.cohort
    ):
        if stage == aggregates.REASON:
            if n:
                reasons[level][code] += n
        else:
            counts[level][stage] += n
    return counts, reasons


ACTIVATION_COLUMNS = [
    "level",
    "name",
    "eligible",
    "asked",
    "skipped",
    "clicked",
    "acted",
    "featured",
    "ask_rate",
    "click_rate",
    "act_rate",
]


def activation(session: Session, f: Filters) -> Panel:
    """Per level (seed 000): enrolments that entered it in the period (eligible), were asked,
    clicked, acted (domain.activation says what each means per level; `summary.definitions`
    carries the text), the asks that were skipped and why, and the rates."""
    scope = _scope(session, f)
    levels = _level_map(session)
    stored = _stored_funnel(session, scope, levels)
    rows = []
    skipped = []
    for level in rules.LEVELS:
        if stored is not None:
            counts, reasons = stored[0].get(level, {}), stored[1].get(level, {})
        else:
            counts, reasons = _level_stats(session, scope, level, levels)
        rows.append(rules.funnel_row(level, counts))
        for code, n in sorted(reasons.items()):
            skipped.append({"level": level, "reason": code, "count": n})
    return _panel(
        "activation",
        ACTIVATION_COLUMNS,
        rows,
        definitions=rules.definitions(),
        skipped=skipped,
        skipped_note=rules.bilingual(rules.SKIP_NOTE),
    )


def _level_key(key: Mapping[str, str]) -> tuple[tuple[str, ...], str]:
    raw = (key.get("level") or "").upper()
    if raw and raw not in rules.LEVELS:
        raise FieldError("level", f"{raw!r}: one of {', '.join(rules.LEVELS)} / 层级无效")
    stage = key.get("stage") or "eligible"
    if stage not in rules.DRILL_STAGES:
        raise FieldError("stage", f"{stage!r}: one of {', '.join(rules.DRILL_STAGES)} / 阶段无效")
    return ((raw,) if raw else rules.LEVELS), stage


DRILL_ACTIVATION_COLUMNS = [
    "enrolment_id",
    "customer",
    "name",
    "level",
    "step",
    "entered_at",
    "ask",
    "reason",
    "message_id",
    "message_status",
    "clicked_at",
    "acted",
]


def drill_activation(
    session: Session, f: Filters, key: Mapping[str, str], limit: int | None
) -> Panel:
    """The enrolments behind one figure: ?level=L1..L4 (all levels when left out)
    &stage=eligible|asked|clicked|acted|skipped|featured (&reason=no_consent … for skipped)."""
    levels, stage = _level_key(key)
    scope = _scope(session, f)
    mapping = _level_map(session)
    reason = key.get("reason") if stage == "skipped" else None
    rows: list[dict[str, Any]] = []
    for level in levels:  # level by level, each in (entered_at, enrolment) order
        want = None if limit is None else limit - len(rows)
        if want == 0:
            break
        cohort = _cohort(session, scope, level, mapping, walk=True, stage=stage)
        if cohort is None:
            continue
        sub = cohort.subquery()
        query = select(sub, Customer.external_id, Customer.name).join(
            Customer,
            Customer.id == sub.c.customer_id + 0,  # looked up per row walked
        )
        if reason:  # the reason must hold its code (the exact test is below)
            query = query.where(sub.c.ask_reason.contains(reason, autoescape=True))
        entered = sorted({s for _v, steps in mapping[level] for s in steps.entry})
        seen: set[int] = set()
        for r in _walk(session, query, sub.c, entered, scope, want):
            if reason and rules.skip_reason_code(r.ask_reason) != reason:
                continue
            if r.enrolment_id in seen:  # two ask steps of one level in one enrolment: once
                continue
            seen.add(r.enrolment_id)
            rows.append(_drill_row(level, r))
            if limit is not None and len(rows) >= limit:
                break
    return _panel("activation", DRILL_ACTIVATION_COLUMNS, rows)


WINDOW = 200  # entry steps per step id in the first window of time a page reads


def _walk(session: Session, query: Select[Any], cohort: Any, entered: list[str], scope: _Scope,
          want: int | None) -> Iterator[Any]:  # fmt: skip
    """The rows of `query` (a level's cohort, its columns `cohort`) in (entered_at,
    enrolment) order. For a page (`want` rows, the caller stops when it has them): a window
    of time at a time, the first holding the next WINDOW entry steps of each step id, the
    next sized for the rows still wanted at the share of steps found so far, so the database
    reads about as many steps as the page needs and sorts a window, never the whole cohort,
    whatever its planner guesses of how rare the stage is. The windows follow one another
    on entered_at, so the rows come in the whole list's order (the CSV: `want` None)."""
    ordered = query.order_by(cohort.entered_at, cohort.enrolment_id)
    if want is None:
        yield from session.execute(ordered)
        return
    if session.get_bind().dialect.name == "postgresql":
        # A window is a few hundred rows: look up each row's ask, message, code … by index.
        # PostgreSQL would otherwise hash whole tables for a stage it guesses rare (all of
        # a level's asks, every referral code), and keep a generic plan after a few runs.
        for setting in ("enable_hashjoin = off", "enable_mergejoin = off",
                        "max_parallel_workers_per_gather = 0",
                        "plan_cache_mode = force_custom_plan"):  # fmt: skip
            session.execute(text(f"SET LOCAL {setting}"))
    after, size = None, max(WINDOW, want)
    walked = found = 0
    while True:
        upto = _window_end(session, entered, scope, after, size)
        window = ordered
        if after is not None:
            window = window.where(cohort.entered_at > after)
        if upto is not None:
            window = window.where(cohort.entered_at <= upto)
        for row in session.execute(window):
            found += 1
            yield row
        if upto is None:
            return
        walked += size
        # Enough steps for the rows still wanted at the share found so far (+ a fifth).
        still = max(want - found, 1)
        size = max(WINDOW, still * walked * 6 // (5 * found)) if found else size * 4
        after = upto


def _window_end(session: Session, entered: list[str], scope: _Scope, after: datetime | None,
                size: int) -> datetime | None:  # fmt: skip
    """The time of the `size`-th entry step after `after` (in the period), the earliest over
    the step ids (each read off ix_enrolment_steps_step_ran); None when none has that many
    left: the window runs to the period's end."""
    ends = []
    for step in entered:
        query = select(EnrolmentStep.ran_at).where(
            EnrolmentStep.step == step, _between(EnrolmentStep.ran_at, scope)
        )
        if after is not None:
            query = query.where(EnrolmentStep.ran_at > after)
        end = session.scalar(query.order_by(EnrolmentStep.ran_at).offset(size - 1).limit(1))
        if end is not None:
            ends.append(end)
    return min(ends, default=None)


def _drill_row(level: str, r: Any) -> dict[str, Any]:
    return {
        "enrolment_id": r.enrolment_id,
        "customer": r.external_id,
        "name": r.name or "",
        "level": level,
        "step": r.step,
        "entered_at": _iso(r.entered_at),
        "ask": r.ask_outcome or ("task" if level == "L4" else ""),
        "reason": r.ask_reason or "",
        "message_id": r.message_id,
        "message_status": r.message_status or "",
        "clicked_at": _iso(r.clicked_at),
        "acted": _iso(r.acted_detail) if r.acted else "",
    }


# --- per playbook step ----------------------------------------------------------------------

STEP_COLUMNS = [
    "playbook",
    "version",
    "step",
    "action",
    "level",
    "reached",
    "ran",
    "waiting",
    "outcomes",
]


def activation_steps(session: Session, f: Filters) -> Panel:
    """Per step of each playbook version: enrolments that reached it (ran it in the period, or
    are waiting at it now), ran it, and how it came out (outcome: count)."""
    scope = _scope(session, f)
    versions = _versions(session)
    ran: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    program = aggregates.program_of(scope)
    if program is not None:
        # activation_counts: the steps per version, step and outcome (cost: days).
        for version, step, outcome, n in aggregates.totals(
            session, aggregates.STEP, scope.start, scope.end, program=program, live=scope.cohort
        ):
            if n:
                key = (int(version), step)
                ran[key][outcome] = ran[key].get(outcome, 0) + n
    else:
        query = (
            select(Enrolment.version_id, EnrolmentStep.step, EnrolmentStep.outcome, func.count())
            .join(Enrolment, Enrolment.id == EnrolmentStep.enrolment_id)
            .where(
                _between(EnrolmentStep.ran_at, scope), _in_customers(Enrolment.customer_id, scope)
            )
            .group_by(Enrolment.version_id, EnrolmentStep.step, EnrolmentStep.outcome)
        )
        for version_id, step, outcome, n in session.execute(query):
            ran[(version_id, step)][outcome] = int(n)
    waiting: dict[tuple[int, str], int] = {}
    for version_id, step, n in session.execute(
        select(Enrolment.version_id, Enrolment.step, func.count())
        .where(Enrolment.status == "active", _waiting_people(Enrolment.customer_id, scope))
        .group_by(Enrolment.version_id, Enrolment.step)
    ):
        waiting[(version_id, step)] = int(n)
    used = {version_id for version_id, _step in [*ran, *waiting]}
    rows = []
    for version_id, name, number, steps in versions:
        if version_id not in used:  # a version nobody in the filter ran or waits in
            continue
        for step_id, action, params in steps:
            outcomes = ran.get((version_id, step_id), {})
            done = sum(outcomes.values())
            now = waiting.get((version_id, step_id), 0)
            levels = sorted({r.level for r in rules.roles_of_step(action, params)})
            rows.append(
                {
                    "playbook": name,
                    "version": number,
                    "step": step_id,
                    "action": action,
                    "level": ",".join(levels),
                    "reached": done + now,
                    "ran": done,
                    "waiting": now,
                    "outcomes": "; ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())),
                }
            )
    return _panel("activation_steps", STEP_COLUMNS, rows)


def _waiting_people(column: Any, scope: _Scope) -> Any:
    """The people filter of the enrolments waiting now (few): a program's people or a
    segment's members probed per enrolment by index (a code in the program, or referred in
    it; a stored member, corrected for the dirty customers), not the whole set."""
    members = scope.cohort
    if scope.segmented and scope.program_id is None and members is not None:
        stored = (
            select(CohortMember.customer_id)
            .where(CohortMember.cohort == members.cohort, CohortMember.customer_id == column)
            .exists()
        )
        found = and_(stored, column.not_in(members.out)) if members.out else stored
        return or_(found, column.in_(members.into)) if members.into else found
    if scope.segmented or scope.program_id is None:
        return _in_customers(column, scope)
    return or_(
        select(ReferralCode.id)
        .where(ReferralCode.customer_id == column, ReferralCode.program_id == scope.program_id)
        .exists(),
        select(Referral.id)
        .where(Referral.referee_id == column, Referral.program_id == scope.program_id)
        .exists(),
    )


DRILL_STEP_COLUMNS = [
    "enrolment_id",
    "customer",
    "name",
    "playbook",
    "version",
    "step",
    "ran_at",
    "outcome",
    "reason",
    "effect",
    "enrolment_status",
]


def drill_activation_steps(
    session: Session, f: Filters, key: Mapping[str, str], limit: int | None
) -> Panel:
    """The enrolments at one step: ?playbook=&version=&step= (each optional; &stage=ran|
    waiting, &outcome= one outcome of the step)."""
    scope = _scope(session, f)
    playbook, step = key.get("playbook") or "", key.get("step") or ""
    version = key.get("version") or ""
    if version and not version.isdigit():
        raise FieldError("version", f"{version!r} is not a number / 不是数字")
    versions = select(PlaybookVersion.id).join(Playbook, Playbook.id == PlaybookVersion.playbook_id)
    if playbook:
        versions = versions.where(Playbook.name == playbook)
    if version:
        versions = versions.where(PlaybookVersion.version == int(version))
    stage = key.get("stage") or "ran"
    common = (Customer.external_id, Customer.name, Playbook.name.label("playbook"),
              PlaybookVersion.version, Enrolment.status.label("enrolment_status"))  # fmt: skip
    if stage == "waiting":
        query = (
            select(
                Enrolment.id.label("enrolment_id"),
                Enrolment.step,
                *common,
                Enrolment.due_at.label("ran_at"),
                literal("waiting").label("outcome"),
                literal("").label("reason"),
                literal("").label("effect"),
            )  # fmt: skip
            .where(Enrolment.status == "active", Enrolment.step.is_not(None))
            .order_by(Enrolment.id)
        )
    elif stage == "ran":
        query = (
            select(
                EnrolmentStep.enrolment_id,
                EnrolmentStep.step,
                *common,
                EnrolmentStep.ran_at,
                EnrolmentStep.outcome,
                EnrolmentStep.reason,
                EnrolmentStep.effect,
            )  # fmt: skip
            .join(Enrolment, Enrolment.id == EnrolmentStep.enrolment_id)
            .where(_between(EnrolmentStep.ran_at, scope))
            .order_by(EnrolmentStep.ran_at, EnrolmentStep.id)
        )
        if step:
            query = query.where(EnrolmentStep.step == step)
        if key.get("outcome"):
            query = query.where(EnrolmentStep.outcome == key["outcome"])
    else:
        raise FieldError("stage", f"{stage!r}: ran or waiting / 只能是 ran 或 waiting")
    if step and stage == "waiting":
        query = query.where(Enrolment.step == step)
    query = (
        query.join(Customer, Customer.id == Enrolment.customer_id)
        .join(PlaybookVersion, PlaybookVersion.id == Enrolment.version_id)
        .join(Playbook, Playbook.id == PlaybookVersion.playbook_id)
        .where(Enrolment.version_id.in_(versions), _people_probed(Enrolment.customer_id, scope))
    )
    if limit is not None:
        query = query.limit(limit)
    rows = [
        {
            "enrolment_id": r.enrolment_id,
            "customer": r.external_id,
            "name": r.name or "",
            "playbook": r.playbook,
            "version": r.version,
            "step": r.step,
            "ran_at": _iso(r.ran_at),
            "outcome": r.outcome,
            "reason": r.reason or "",
            "effect": r.effect or "",
            "enrolment_status": r.enrolment_status,
        }
        for r in session.execute(query)
    ]
    return _panel("activation_steps", DRILL_STEP_COLUMNS, rows)


# --- level 1: review asks per review site ---------------------------------------------------

ALL_SITES = ""  # the row of a period that counts the messages themselves, whatever site
REVIEW_COLUMNS = ["period", "site", "asked", "skipped", "delivered", "clicked", "click_rate"]


def _reviews_where(scope: _Scope, probed: Any = None) -> Any:
    """Review asks in the period to the scope's customers (`probed`: tested per row, for a
    drill page: dashboard._probed)."""
    return and_(
        Message.template.in_(rules.REVIEW_TEMPLATES),
        _between(Message.created_at, scope),
        _base()._in_page(Message.customer_id, scope, probed),
    )


def _reviews_from_rows(
    session: Session, scope: _Scope, bucket: str, counts: dict[tuple[date, str], dict[str, int]]
) -> None:
    """The review figures of the people in a segment, from the messages and their links."""
    delivered = case((Message.status.in_(rules.DELIVERED_STATUSES), 1), else_=0)
    day = utc_day(session, Message.created_at)
    for day_value, status, n, sent, clicked in session.execute(
        select(
            day, Message.status, func.count(), func.sum(delivered), func.count(Message.clicked_at)
        )
        .where(_reviews_where(scope))
        .group_by(day, Message.status)
    ):
        row = counts[(dashboard_rules.bucket_start(as_date(day_value), bucket), ALL_SITES)]
        if status == "skipped":
            row["skipped"] += int(n)
        else:
            row["asked"] += int(n)
            row["delivered"] += int(sent or 0)
            row["clicked"] += int(clicked or 0)
    label = func.coalesce(MessageLink.label, "")
    for day_value, site, n, sent, clicked in session.execute(
        select(day, label, func.count(), func.sum(delivered), func.count(MessageLink.clicked_at))
        .join(Message, Message.id == MessageLink.message_id)
        .where(_reviews_where(scope), Message.status != "skipped")
        .group_by(day, label)
    ):
        row = counts[(dashboard_rules.bucket_start(as_date(day_value), bucket), site)]
        row["asked"] += int(n)
        row["delivered"] += int(sent or 0)
        row["clicked"] += int(clicked or 0)


def reviews(session: Session, f: Filters) -> Panel:
    """Review requests (level 1) made in the period, per week/month: per period one row of
    the messages (`site` empty: asked = queued or sent, skipped, delivered, clicked any
    link), then one row per review-site link label (asked = requests that carried that
    site's link, delivered = of those, sent; clicked = that link clicked)."""
    scope = _scope(session, f)
    counts: dict[tuple[date, str], dict[str, int]] = defaultdict(
        lambda: {"asked": 0, "skipped": 0, "delivered": 0, "clicked": 0}
    )
    program = aggregates.program_of(scope)
    if program is not None:
        # activation_counts: the review asks per day, site and measure (cost: days, sites).
        for day_value, site, measure, _c, n in aggregates.counts(
            session, aggregates.REVIEW, scope.start, scope.end, program=program, live=scope.cohort
        ):
            counts[(dashboard_rules.bucket_start(day_value, f.bucket), site)][measure] += n
    else:
        _reviews_from_rows(session, scope, f.bucket, counts)
    rows = []
    totals = {"asked": 0, "skipped": 0, "delivered": 0, "clicked": 0}
    for (period, site), c in sorted(counts.items()):
        if site == ALL_SITES:
            for k in totals:
                totals[k] += c[k]
        rows.append(
            {
                "period": period.isoformat(),
                "site": site,
                "asked": c["asked"],
                "skipped": c["skipped"] if site == ALL_SITES else None,
                "delivered": c["delivered"],
                "clicked": c["clicked"],
                "click_rate": rules.rate(c["clicked"], c["delivered"]),
            }
        )
    return _panel("reviews", REVIEW_COLUMNS, rows, totals=totals, bucket=f.bucket)


def _period_bounds(key: Mapping[str, str], bucket: str) -> tuple[datetime, datetime] | None:
    if not key.get("period"):
        return None
    try:
        start = date.fromisoformat(key["period"])
    except ValueError:
        raise FieldError("period", f"{key['period']!r} is not a date / 不是日期") from None
    end = _base()._period_end(start, bucket)
    return datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC)


REVIEW_STAGES = ("asked", "skipped", "delivered", "clicked")
DRILL_REVIEW_COLUMNS = [
    "message_id",
    "created_at",
    "customer",
    "name",
    "status",
    "reason",
    "sent_at",
    "clicked_at",
    "site",
    "site_clicked_at",
]


def drill_reviews(session: Session, f: Filters, key: Mapping[str, str], limit: int | None) -> Panel:
    """The review requests behind a figure: ?period=&site=<link label>&stage=asked|skipped|
    delivered|clicked (a link: the requests carrying that site's link; clicked: that link)."""
    scope = _scope(session, f)
    stage = key.get("stage") or "asked"
    if stage not in REVIEW_STAGES:
        raise FieldError("stage", f"{stage!r}: one of {', '.join(REVIEW_STAGES)} / 阶段无效")
    site = key.get("site")
    columns: list[Any] = [
        Message.id,
        Message.created_at,
        Customer.external_id,
        Customer.name,
        Message.status,
        Message.reason,
        Message.sent_at,
        Message.clicked_at,
    ]
    query = select(*columns).join(Customer, Customer.id == Message.customer_id)
    query = query.where(_reviews_where(scope, _base()._probed(session, scope, limit)))
    if site:
        query = query.add_columns(
            MessageLink.label.label("site"), MessageLink.clicked_at.label("site_clicked_at")
        ).join(MessageLink, MessageLink.message_id == Message.id)
        query = query.where(func.coalesce(MessageLink.label, "") == site)
        clicked = MessageLink.clicked_at.is_not(None)
    else:
        query = query.add_columns(literal("").label("site"), literal(None).label("site_clicked_at"))
        clicked = Message.clicked_at.is_not(None)
    bounds = _period_bounds(key, f.bucket)
    if bounds:
        query = query.where(Message.created_at >= bounds[0], Message.created_at < bounds[1])
    if stage == "skipped":
        query = query.where(Message.status == "skipped")
    else:
        query = query.where(Message.status != "skipped")
    if stage == "delivered":
        query = query.where(Message.status.in_(rules.DELIVERED_STATUSES))
    elif stage == "clicked":
        query = query.where(clicked)
    query = query.order_by(Message.created_at, Message.id)
    if limit is not None:
        query = query.limit(limit)
    rows = [
        {
            "message_id": r.id,
            "created_at": _iso(r.created_at),
            "customer": r.external_id,
            "name": r.name or "",
            "status": r.status,
            "reason": r.reason or "",
            "sent_at": _iso(r.sent_at),
            "clicked_at": _iso(r.clicked_at),
            "site": r.site or "",
            "site_clicked_at": _iso(r.site_clicked_at),
        }
        for r in session.execute(query)
    ]
    return _panel("reviews", DRILL_REVIEW_COLUMNS, rows)


# --- level 3: UGC challenges ----------------------------------------------------------------

UGC_COLUMNS = ["period", "challenge", "invitations", "entries", "approved", "rejected", "featured"]
UGC_STAGES = ("invitations", "entries", "approved", "rejected", "pending", "featured")


def _ugc_from_counts(
    session: Session,
    scope: _Scope,
    bucket: str,
    counts: dict[tuple[date, str], dict[str, int]],
    program: int,
) -> None:
    """The UGC figures from activation_counts (cost: days and challenges)."""
    slugs = {str(i): slug for i, slug in session.execute(select(Challenge.id, Challenge.slug))}
    for day_value, challenge, _b, _c, n in aggregates.counts(
        session, aggregates.UGC_INVITED, scope.start, scope.end, program=program, live=scope.cohort
    ):
        if n:
            counts[(dashboard_rules.bucket_start(day_value, bucket), slugs[challenge])][
                "invitations"
            ] += n
    for day_value, challenge, status, star, n in aggregates.counts(
        session, aggregates.UGC_ENTRY, scope.start, scope.end, program=program, live=scope.cohort
    ):
        if not n:
            continue
        row = counts[(dashboard_rules.bucket_start(day_value, bucket), slugs[challenge])]
        row["entries"] += n
        if status in ("approved", "rejected"):
            row[status] += n
        if star == "1":
            row["featured"] += n


def _ugc_from_rows(
    session: Session, scope: _Scope, bucket: str, counts: dict[tuple[date, str], dict[str, int]]
) -> None:
    """The UGC figures of the people in a segment, from the rows."""
    day = utc_day(session, ChallengeInvitation.created_at)
    for day_value, slug, n in session.execute(
        select(day, Challenge.slug, func.count())
        .join(Challenge, Challenge.id == ChallengeInvitation.challenge_id)
        .where(
            _between(ChallengeInvitation.created_at, scope),
            _in_customers(ChallengeInvitation.customer_id, scope),
        )
        .group_by(day, Challenge.slug)
    ):
        counts[(dashboard_rules.bucket_start(as_date(day_value), bucket), slug)]["invitations"] += (
            int(n)
        )
    day = utc_day(session, ChallengeEntry.submitted_at)
    featured = case((ChallengeEntry.featured.is_(True), 1), else_=0)
    for day_value, slug, status, n, stars in session.execute(
        select(day, Challenge.slug, ChallengeEntry.status, func.count(), func.sum(featured))
        .join(Challenge, Challenge.id == ChallengeEntry.challenge_id)
        .where(
            _between(ChallengeEntry.submitted_at, scope),
            _in_customers(ChallengeEntry.customer_id, scope),
        )
        .group_by(day, Challenge.slug, ChallengeEntry.status)
    ):
        row = counts[(dashboard_rules.bucket_start(as_date(day_value), bucket), slug)]
        row["entries"] += int(n)
        if status in ("approved", "rejected"):
            row[status] += int(n)
        row["featured"] += int(stars or 0)


def ugc(session: Session, f: Filters) -> Panel:
    """Per challenge and week/month: invitations made, entries submitted, and of those,
    approved, rejected and featured (entries counted in the period they were submitted)."""
    scope = _scope(session, f)
    zero = dict.fromkeys(("invitations", "entries", "approved", "rejected", "featured"), 0)
    counts: dict[tuple[date, str], dict[str, int]] = defaultdict(lambda: dict(zero))
    program = aggregates.program_of(scope)
    if program is not None:
        _ugc_from_counts(session, scope, f.bucket, counts, program)
    else:
        _ugc_from_rows(session, scope, f.bucket, counts)
    rows = [
        {"period": period.isoformat(), "challenge": slug, **c}
        for (period, slug), c in sorted(counts.items())
    ]
    totals = dict(zero)
    for row in rows:
        for k in totals:
            totals[k] += row[k]
    return _panel("ugc", UGC_COLUMNS, rows, totals=totals, bucket=f.bucket)


DRILL_UGC_COLUMNS = [
    "challenge",
    "customer",
    "name",
    "invited_at",
    "entry_id",
    "submitted_at",
    "status",
    "featured",
    "link",
    "review_reason",
]


def drill_ugc(session: Session, f: Filters, key: Mapping[str, str], limit: int | None) -> Panel:
    """The invitations or entries behind a figure: ?period=&challenge=&stage=invitations|
    entries|approved|rejected|pending|featured."""
    scope = _scope(session, f)
    stage = key.get("stage") or "entries"
    if stage not in UGC_STAGES:
        raise FieldError("stage", f"{stage!r}: one of {', '.join(UGC_STAGES)} / 阶段无效")
    bounds = _period_bounds(key, f.bucket)
    base = (
        select(
            Challenge.slug,
            Customer.external_id,
            Customer.name,
            ChallengeInvitation.created_at.label("invited_at"),
            ChallengeEntry.id.label("entry_id"),
            ChallengeEntry.submitted_at,
            ChallengeEntry.status,
            ChallengeEntry.featured,
            ChallengeEntry.link,
            ChallengeEntry.review_reason,
        )
        .join(Challenge, Challenge.id == ChallengeInvitation.challenge_id)
        .join(Customer, Customer.id == ChallengeInvitation.customer_id)
    )
    if stage == "invitations":
        when = ChallengeInvitation.created_at
        query = base.outerjoin(
            ChallengeEntry, ChallengeEntry.invitation_id == ChallengeInvitation.id
        ).where(_in_customers(ChallengeInvitation.customer_id, scope))
    else:
        when = ChallengeEntry.submitted_at
        query = base.join(ChallengeEntry, ChallengeEntry.invitation_id == ChallengeInvitation.id)
        query = query.where(_in_customers(ChallengeEntry.customer_id, scope))
        if stage in ("approved", "rejected", "pending"):
            query = query.where(ChallengeEntry.status == stage)
        elif stage == "featured":
            query = query.where(ChallengeEntry.featured.is_(True))
    query = query.where(_between(when, scope))
    if bounds:
        query = query.where(when >= bounds[0], when < bounds[1])
    if key.get("challenge"):
        query = query.where(Challenge.slug == key["challenge"])
    query = query.order_by(when, ChallengeInvitation.id)
    if limit is not None:
        query = query.limit(limit)
    rows = [
        {
            "challenge": r.slug,
            "customer": r.external_id,
            "name": r.name or "",
            "invited_at": _iso(r.invited_at),
            "entry_id": r.entry_id,
            "submitted_at": _iso(r.submitted_at),
            "status": r.status or "",
            "featured": bool(r.featured) if r.entry_id else "",
            "link": r.link or "",
            "review_reason": r.review_reason or "",
        }
        for r in session.execute(query)
    ]
    return _panel("ugc", DRILL_UGC_COLUMNS, rows)
