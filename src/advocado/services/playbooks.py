"""Playbooks: applying them (versioned), enrolling customers, and running due steps durably.

- *Apply*: a changed text makes a new version; enrolments keep the version they started on.
- *Events*: what may enrol someone is an outbox row (`playbook_events`) written in the same
  transaction as its cause (a response saved, an activity, a referral status change).
  `dispatch_events` turns pending rows into enrolments, in one transaction per batch.
- *Steps*: an enrolment's next step and when it falls due live in its row. A worker claims due
  rows with a lease (a crashed worker's lease lapses and another takes the row over), runs
  their steps and advances them in one transaction per batch (a savepoint per enrolment).
  Each step's effect is keyed `enrolment:<id>:<step>` (the message, task, invitation, code all
  carry it as a unique key), so re-running a step after a crash or a lapsed lease creates
  nothing twice; the step's log row is unique on (enrolment, step) as well.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from sqlalchemy import Engine, bindparam, event, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.base import NEVER_SET, NO_VALUE

from advocado import clock
from advocado.config import settings
from advocado.domain import playbooks as rules
from advocado.domain.playbooks import Condition, PlaybookError, PlaybookSpec, Step
from advocado.services import activation_aggregates, audit, cohorts, ledger, segments
from advocado.store.db import unit_of_work
from advocado.store.models import (
    Customer,
    Enrolment,
    EnrolmentStep,
    Playbook,
    PlaybookEvent,
    PlaybookVersion,
    Program,
    Referral,
    Setting,
)

log = logging.getLogger(__name__)

DEFAULT_FILE = "default.yaml"
DEFAULT_INSTALLED = "default_playbook_installed"
LEASE = timedelta(seconds=int(os.environ.get("ADVOCADO_LEASE_SECONDS", "120")))
MAX_ATTEMPTS = 5
MAX_STEPS_PER_RUN = 64  # more than any playbook can have in a row without a wait
ENDED = ("completed", "exited", "handed_off", "failed")


class UnknownPlaybook(LookupError):
    pass


def _insert(session: Session) -> Any:
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


# --- applying -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    name: str
    version: int
    created: bool  # a new playbook
    changed: bool  # a new version (False: the same text was applied again)


def default_source() -> str:
    return files("advocado.playbooks").joinpath(DEFAULT_FILE).read_text(encoding="utf-8")


def apply_source(
    session: Session, *, source: str, file: str = "<playbook>", actor: str = audit.SYSTEM
) -> Applied:
    """Create or update a playbook from YAML (or JSON) text. PlaybookError names file, line and
    field. The same text again changes nothing; a changed one is the next version."""
    data, spec = rules.load_source(source, file)
    return _store(session, spec, source, data, actor)


def apply_data(session: Session, *, data: Any, actor: str = audit.SYSTEM) -> Applied:
    """The same from data (the API's JSON body)."""
    spec = rules.parse_playbook(data)
    source = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    return _store(session, spec, source, data, actor)


def _plain(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str, ensure_ascii=False))


def _store(session: Session, spec: PlaybookSpec, source: str, data: Any, actor: str) -> Applied:
    now = clock.now()
    definition = _plain(data)
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
    playbook = session.scalar(select(Playbook).where(Playbook.name == spec.name).with_for_update())
    created = playbook is None
    if playbook is None:
        playbook = Playbook(name=spec.name, enabled=spec.enabled, version=0, created_at=now,
                            updated_at=now)  # fmt: skip
        session.add(playbook)
        session.flush()
    else:
        latest = session.scalar(
            select(PlaybookVersion).where(PlaybookVersion.playbook_id == playbook.id,
                                          PlaybookVersion.version == playbook.version)
        )  # fmt: skip
        if latest is not None and latest.digest == digest:
            if latest.source != source:
                latest.source = source  # comments or layout only: same behaviour
            return Applied(spec.name, playbook.version, False, False)
    playbook.version += 1
    playbook.updated_at = now
    if not created:
        playbook.enabled = spec.enabled
    session.add(PlaybookVersion(playbook_id=playbook.id, version=playbook.version, source=source,
                                definition=definition, digest=digest,
                                created_at=now))  # fmt: skip
    session.flush()
    audit.record(session, actor=actor, entity="playbook", entity_id=spec.name,
                 action="create" if created else "update",
                 after={"version": playbook.version, "digest": digest})  # fmt: skip
    return Applied(spec.name, playbook.version, created, True)


def install_default(session: Session) -> bool:
    """Applies the shipped default playbook once per database (the first time anything asks):
    a user who disables or changes it later does not get it back. True if it was installed."""
    inserted = session.execute(
        _insert(session)(Setting)
        .values(key=DEFAULT_INSTALLED, value=clock.now().isoformat())
        .on_conflict_do_nothing(index_elements=[Setting.key])
    )
    if not inserted.rowcount:
        return False
    apply_source(session, source=default_source(), file=DEFAULT_FILE)
    _ensure_default_program(session)
    return True


DEFAULT_PROGRAM = "double-sided"


def _ensure_default_program(session: Session) -> None:
    """Level 2 of the default playbook needs a referral program: seed 004's double-sided one
    (the same file as examples/programs/double-sided.yaml) is created when none has its slug."""
    from advocado.services.programs import apply_program

    if session.scalar(select(Program.id).where(Program.slug == DEFAULT_PROGRAM)) is None:
        text = files("advocado.playbooks").joinpath("programs", f"{DEFAULT_PROGRAM}.yaml")
        apply_program(session, yaml.safe_load(text.read_text(encoding="utf-8")))


@cache
def _spec_of(version_id: int, definition_json: str) -> PlaybookSpec:
    return rules.parse_playbook(json.loads(definition_json))


def spec_of(version: PlaybookVersion) -> PlaybookSpec:
    """A version's parsed playbook (versions never change: parsed once per process)."""
    return _spec_of(version.id, json.dumps(version.definition, sort_keys=True))


@dataclass(frozen=True)
class PlaybookView:
    name: str
    title: dict[str, str]
    enabled: bool
    version: int
    triggers: list[str]
    steps: int
    active: int  # enrolments running
    ended: int
    updated_at: datetime
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "enabled": self.enabled,
                "version": self.version, "triggers": self.triggers, "steps": self.steps,
                "active": self.active, "ended": self.ended,
                "updated_at": self.updated_at.isoformat(), "source": self.source}  # fmt: skip


def _find(session: Session, name: str) -> Playbook:
    playbook = session.scalar(select(Playbook).where(Playbook.name == name))
    if playbook is None:
        raise UnknownPlaybook(f"no playbook {name!r} / 没有名为 {name} 的自动化剧本")
    return playbook


def _current(session: Session, playbook: Playbook) -> PlaybookVersion:
    version = session.scalar(
        select(PlaybookVersion).where(PlaybookVersion.playbook_id == playbook.id,
                                      PlaybookVersion.version == playbook.version)
    )  # fmt: skip
    assert version is not None
    return version


def _view(session: Session, playbook: Playbook, counts: dict[tuple[int, bool], int],
          with_source: bool) -> PlaybookView:  # fmt: skip
    version = _current(session, playbook)
    spec = spec_of(version)
    return PlaybookView(
        name=playbook.name, title=dict(spec.title), enabled=playbook.enabled,
        version=playbook.version, triggers=[t.type for t in spec.triggers],
        steps=len(spec.steps), active=counts.get((playbook.id, True), 0),
        ended=counts.get((playbook.id, False), 0), updated_at=playbook.updated_at,
        source=version.source if with_source else "",
    )  # fmt: skip


def _counts(session: Session) -> dict[tuple[int, bool], int]:
    active = Enrolment.status == "active"
    rows = session.execute(
        select(Enrolment.playbook_id, active, func.count()).group_by(Enrolment.playbook_id, active)
    )
    return {(playbook_id, bool(is_active)): n for playbook_id, is_active, n in rows}


def list_playbooks(session: Session) -> list[PlaybookView]:
    counts = _counts(session)
    found = session.scalars(select(Playbook).order_by(Playbook.name))
    return [_view(session, playbook, counts, False) for playbook in found]


def get_playbook(session: Session, *, name: str) -> PlaybookView:
    return _view(session, _find(session, name), _counts(session), True)


def set_enabled(
    session: Session, *, name: str, enabled: bool, actor: str = audit.SYSTEM
) -> PlaybookView:
    """A disabled playbook enrols no one new; enrolments already running go on."""
    playbook = _find(session, name)
    if playbook.enabled != enabled:
        audit.record(session, actor=actor, entity="playbook", entity_id=name,
                     action="enable" if enabled else "disable",
                     before={"enabled": playbook.enabled}, after={"enabled": enabled})  # fmt: skip
    playbook.enabled = enabled
    playbook.updated_at = clock.now()
    session.flush()
    return get_playbook(session, name=name)


def validate_source(source: str, file: str = "<playbook>") -> PlaybookError | None:
    try:
        rules.load_source(source, file)
    except PlaybookError as error:
        return error
    return None


# --- the outbox ---------------------------------------------------------------------------


def record_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Outbox rows (kind, customer_id, subject, payload, occurred_at), in the caller's
    transaction, set-based (one statement per batch)."""
    if not rows:
        return
    table = PlaybookEvent.__table__
    if session.get_bind().dialect.name == "postgresql":
        from advocado.services.records import _unnest  # one INSERT … SELECT unnest(arrays)

        columns = list(rows[0])
        session.connection().execute(
            postgresql.insert(table).from_select(columns, _unnest(table, list(rows)))
        )
        return
    # SQLite: the driver's own executemany, each value converted once by its column type (as
    # services.records does for the import): SQLAlchemy's per-row machinery costs more.
    from advocado.services.records import _sqlite_converter

    connection = session.connection()
    names = list(rows[0])
    converters = [_sqlite_converter(table.c[name].type, connection.dialect) for name in names]
    values = [
        tuple(convert(row[name]) if convert else row[name]
              for name, convert in zip(names, converters, strict=True))
        for row in rows
    ]  # fmt: skip
    columns = ", ".join(f'"{name}"' for name in names)
    marks = ", ".join("?" * len(names))
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.executemany(f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})', values)


def record_response_events(session: Session, changes: Iterable[tuple[Any, dict[str, Any]]]) -> None:
    """Called by services.records for every response created or changed, in its transaction:
    one `response_submitted` / `response_updated` row per response of a known customer."""
    now = clock.now()
    rows = []
    for old, new in changes:
        row_id = new.get("id") or (old or {}).get("id")
        if new.get("customer_id") is None or row_id is None:
            continue
        rows.append({
            "kind": "response_submitted" if old is None else "response_updated",
            "customer_id": new["customer_id"], "subject": f"response:{row_id}",
            "payload": {"score": new["score"], "survey": new["survey"],
                        "submitted_at": new["submitted_at"].isoformat()},
            "occurred_at": now, "processed_at": None,
        })  # fmt: skip
    record_events(session, rows)


def record_event(
    session: Session, *, kind: str, customer_id: int, subject: str,
    payload: dict[str, Any] | None = None, occurred_at: datetime | None = None,
) -> None:  # fmt: skip
    """One outbox row (an activity, a referral status change), in the caller's transaction."""
    if kind not in rules.EVENT_TRIGGERS:
        raise ValueError(f"{kind!r} is not one of {', '.join(rules.EVENT_TRIGGERS)}")
    record_events(session, [{"kind": kind, "customer_id": customer_id, "subject": subject,
                             "payload": _plain(payload or {}),
                             "occurred_at": occurred_at or clock.now(),
                             "processed_at": None}])  # fmt: skip


@event.listens_for(Referral.status, "set", active_history=True)
def _referral_status_changes(target: Referral, value: Any, previous: Any, _initiator: Any) -> None:
    """A referral whose status changes (qualified, rewarded, rejected …) is an event for its
    advocate, added to the same session (so written in the same transaction):
    `referral_status_changed`, subject referral:<id>:<status>. A new referral's first status
    is not a change. (An attribute event, not a flush hook: a flush hook would look at every
    object of every session, which cost a bulk import a third of its time.)"""
    if previous in (NO_VALUE, NEVER_SET, None) or value == previous or target.id is None:
        return
    session = object_session(target)
    if session is None:
        return
    session.add(PlaybookEvent(
        kind="referral_status_changed", customer_id=target.advocate_id,
        subject=f"referral:{target.id}:{value}",
        payload={"status": str(value), "previous": str(previous), "referral": target.id,
                 "program": target.program_id},
        occurred_at=clock.now(), processed_at=None))  # fmt: skip


# --- enrolling ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    playbook: Playbook
    version: PlaybookVersion
    spec: PlaybookSpec


def live_playbooks(session: Session) -> list[Live]:
    found = []
    for playbook in session.scalars(select(Playbook).where(Playbook.enabled.is_(True))):
        version = _current(session, playbook)
        found.append(Live(playbook, version, spec_of(version)))
    return found


def not_asked_since(session: Session, customer_ids: list[int], since: datetime) -> set[int]:
    """Those not sent a marketing ask since `since` (messaging keeps that)."""
    from advocado.services.messaging import last_asked_at

    found = set()
    for customer_id in customer_ids:
        asked = last_asked_at(session, customer_id=customer_id)
        if asked is None or asked < since:
            found.add(customer_id)
    return found


def matching(session: Session, condition: Condition, customer_ids: list[int],
             now: datetime) -> set[int]:  # fmt: skip
    """Which of these customers meet the condition (a segment filter + not asked in N days)."""
    if not customer_ids:
        return set()
    chosen = set(customer_ids)
    if condition.filters.as_dict():
        chosen = segments.members_among(session, condition.filters, sorted(chosen))
    if condition.not_asked_in_days is not None and chosen:
        since = now - timedelta(days=condition.not_asked_in_days)
        chosen = not_asked_since(session, sorted(chosen), since)
    return chosen


def _enrol(session: Session, live: Live, wanted: dict[int, tuple[str, dict[str, Any]]],
           now: datetime) -> int:  # fmt: skip
    """Enrols customer -> (cause, context) where the playbook's conditions hold, once per
    cause, and not while the customer is still running in the playbook. Returns how many."""
    ids = sorted(matching(session, live.spec.conditions, sorted(wanted), now))
    if not ids:
        return 0
    running: set[int] = set()
    for start in range(0, len(ids), 900):
        running.update(session.scalars(
            select(Enrolment.customer_id).where(
                Enrolment.playbook_id == live.playbook.id, Enrolment.status == "active",
                Enrolment.customer_id.in_(ids[start : start + 900]))
        ))  # fmt: skip
    first = live.spec.steps[0].id
    rows = [
        {"playbook_id": live.playbook.id, "version_id": live.version.id, "customer_id": cid,
         "cause": wanted[cid][0], "status": "active", "step": first, "due_at": now,
         "attempts": 0, "context": wanted[cid][1], "created_at": now, "updated_at": now}
        for cid in ids if cid not in running
    ]  # fmt: skip
    made = 0
    for start in range(0, len(rows), 500):
        statement = (
            _insert(session)(Enrolment)
            .on_conflict_do_nothing(index_elements=["playbook_id", "customer_id", "cause"])
            .returning(Enrolment.id)
        )
        made += len(session.execute(statement, rows[start : start + 500]).all())
    return made


def _event_matches(trigger: rules.Trigger, event: PlaybookEvent) -> bool:
    payload = event.payload or {}
    if trigger.within is not None and "submitted_at" in payload:
        submitted = datetime.fromisoformat(payload["submitted_at"])
        if event.occurred_at - submitted > trigger.within:
            return False
    if trigger.survey and payload.get("survey") != trigger.survey:
        return False
    return not (trigger.statuses and payload.get("status") not in trigger.statuses)


def dispatch_events(engine: Engine, *, now: datetime | None = None, batch: int = 2000) -> int:
    """Turns pending outbox rows into enrolments; each batch in one transaction (a crash
    leaves the batch pending, and enrolling twice is stopped by the unique cause)."""
    now = now or clock.now()
    enrolled = 0
    while True:
        with unit_of_work(engine) as session:
            query = select(PlaybookEvent).where(PlaybookEvent.processed_at.is_(None))
            query = query.order_by(PlaybookEvent.id).limit(batch)
            if engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            events = list(session.scalars(query))
            if not events:
                return enrolled
            for live in live_playbooks(session):
                wanted: dict[int, tuple[str, dict[str, Any]]] = {}
                for event in events:
                    for trigger in live.spec.triggered_by(event.kind):
                        if _event_matches(trigger, event):
                            wanted.setdefault(
                                event.customer_id,
                                (event.subject, {"trigger": event.kind, **(event.payload or {})}),
                            )
                if wanted:
                    enrolled += _enrol(session, live, wanted, now)
            session.execute(
                update(PlaybookEvent).where(PlaybookEvent.id.in_([e.id for e in events]))
                .values(processed_at=now)
            )  # fmt: skip
            if len(events) < batch:
                return enrolled


def scan_triggers(engine: Engine, *, now: datetime | None = None) -> int:
    """Enrols on the triggers that are states, not events: `segment_entered` (each member,
    once per playbook: cause segment:<slug>) and `date` (on that day: cause date:<day>)."""
    now = now or clock.now()
    enrolled = 0
    with unit_of_work(engine) as session:
        for live in live_playbooks(session):
            for trigger in live.spec.triggers:
                audience: list[int] | None = None
                cause = ""
                if trigger.type == "segment_entered" and trigger.segment:
                    try:
                        _, spec = segments.segment_filter(session, slug=trigger.segment)
                    except segments.SegmentNotFound:
                        log.warning("playbook %s: no segment %s", live.spec.name, trigger.segment)
                        continue
                    audience = list(session.scalars(segments._members(session, spec, False)))
                    cause = f"segment:{trigger.segment}"
                elif trigger.type == "date" and trigger.on:
                    day = trigger.on.replace(year=now.year) if trigger.yearly else trigger.on
                    if not (day <= now.date() < day + timedelta(days=1)):
                        continue
                    cause = f"date:{day.isoformat()}"
                    if trigger.segment:
                        _, spec = segments.segment_filter(session, slug=trigger.segment)
                        audience = list(session.scalars(segments._members(session, spec, False)))
                    else:
                        audience = list(session.scalars(select(Customer.id)))
                if audience:
                    context = {"trigger": trigger.type}
                    enrolled += _enrol(session, live, {c: (cause, context) for c in audience},
                                       now)  # fmt: skip
    return enrolled


def enrol_manually(
    session: Session, *, name: str, customer_external_ids: Sequence[str], key: str | None = None
) -> int:
    """Enrols named customers by hand (CLI, API, console), through the playbook's conditions.
    The same `key` again enrols no one twice. Unknown customers: LookupError naming them."""
    playbook = _find(session, name)
    version = _current(session, playbook)
    live = Live(playbook, version, spec_of(version))
    ids = dict(session.execute(
        select(Customer.external_id, Customer.id).where(
            Customer.external_id.in_(list(customer_external_ids)))
    ).all())  # fmt: skip
    missing = [e for e in customer_external_ids if e not in ids]
    if missing:
        raise LookupError(f"no customer {missing[0]!r} / 没有客户 {missing[0]}")
    now = clock.now()
    cause = f"manual:{key or now.isoformat()}"
    return _enrol(session, live, {cid: (cause, {"trigger": "manual"}) for cid in ids.values()},
                  now)  # fmt: skip


# --- running steps ------------------------------------------------------------------------


@dataclass
class Outcome:
    outcome: str
    reason: str
    effect: str | None = None
    goto: str | None = None  # jump to this step instead of the following one
    end: str | None = None  # ends the enrolment with this status
    due_at: datetime | None = None  # a wait: the following step runs then


@dataclass
class RunReport:
    enrolled: int = 0
    claimed: int = 0
    steps: int = 0
    failed: int = 0
    delivered: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        delivered = self.delivered
        return {"enrolled": self.enrolled, "claimed": self.claimed, "steps": self.steps,
                "failed": self.failed, "delivered": delivered, **self.extra}  # fmt: skip


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_due(engine: Engine, *, now: datetime, owner: str, limit: int) -> list[int]:
    """Takes up to `limit` due enrolments that nobody holds (or whose holder's lease lapsed)
    and holds them for LEASE. Concurrent workers never get the same row."""
    with unit_of_work(engine) as session:
        free = or_(Enrolment.lease_until.is_(None), Enrolment.lease_until < now)
        query = (
            select(Enrolment.id)
            .where(Enrolment.status == "active", Enrolment.due_at <= now, free)
            .order_by(Enrolment.due_at, Enrolment.id)
            .limit(limit)
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if ids:
            session.execute(
                update(Enrolment).where(Enrolment.id.in_(ids), Enrolment.status == "active",
                                        free)
                .values(lease_owner=owner, lease_until=now + LEASE)
            )  # fmt: skip
        return ids


class _Runner:
    """Runs one enrolment's due steps inside the caller's transaction."""

    def __init__(self, session: Session, enrolment: Enrolment, customer: Customer,
                 spec: PlaybookSpec, now: datetime) -> None:  # fmt: skip
        self.session, self.enrolment, self.customer = session, enrolment, customer
        self.spec, self.now = spec, now
        self.context: dict[str, Any] = dict(enrolment.context or {})

    def key(self, step: Step) -> str:
        return f"enrolment:{self.enrolment.id}:{step.id}"

    def run(self) -> int:
        """Runs steps until a wait or the end; returns how many ran."""
        ran = 0
        logged: list[dict[str, Any]] = []
        step_id = self.enrolment.step
        status, due_at, reason = "active", self.now, None
        while step_id is not None and ran < MAX_STEPS_PER_RUN:
            step = self.spec.step(step_id)
            result = getattr(self, f"_{step.action}")(step)
            logged.append({"enrolment_id": self.enrolment.id, "step": step.id,
                           "action": step.action, "outcome": result.outcome,
                           "reason": result.reason, "effect": result.effect,
                           "ran_at": self.now})  # fmt: skip
            ran += 1
            if result.end:
                status, step_id, due_at, reason = result.end, None, None, result.reason
                break
            step_id = result.goto or self.spec.following(step)
            if step_id is None:
                status, due_at, reason = "completed", None, "all steps done / 全部步骤完成"
                break
            if result.due_at is not None and result.due_at > self.now:
                due_at = result.due_at
                break
        self.logged = logged
        self.advance = {"b_id": self.enrolment.id, "b_step": self.enrolment.step,
                        "b_owner": self.enrolment.lease_owner, "step": step_id,
                        "status": status, "due_at": due_at, "context": self.context,
                        "end_reason": reason, "updated_at": self.now}  # fmt: skip
        return ran

    # one method per action ----------------------------------------------------------------

    def _wait(self, step: Step) -> Outcome:
        due = self.now + timedelta(seconds=step.params["for"])
        if step.params["until"]:
            due = rules.next_local_time(due, rules.parse_clock(step.params["until"]),
                                        self.customer.timezone)  # fmt: skip
        return Outcome("waiting", f"until {due.isoformat()} / 等待至 {due.isoformat()}",
                       due_at=due)  # fmt: skip

    def _branch(self, step: Step) -> Outcome:
        for arm in rules.branch_arms(step):
            if arm.condition is None or self.customer.id in matching(
                self.session, arm.condition, [self.customer.id], self.now
            ):
                said = arm.condition.describe() if arm.condition else "otherwise"
                return Outcome("chose", f"{said} -> {arm.goto} / 条件 {said} 成立,转到 "
                                        f"{arm.goto}", goto=arm.goto)  # fmt: skip
        return Outcome("chose", "no condition held: next step / 条件均不成立,继续下一步")

    def _message_context(self) -> dict[str, Any]:
        return {**self.spec.vars, **self.context, "playbook": self.spec.name}

    def _send_message(self, step: Step) -> Outcome:
        from advocado.services.messaging import enqueue_message

        queued = enqueue_message(
            self.session, customer_id=self.customer.id, template=step.params["template"],
            channel=step.params["channel"], cause_key=self.key(step),
            context=_plain(self._message_context()), marketing=step.params["marketing"],
        )  # fmt: skip
        return Outcome(
            str(queued.status),
            str(queued.reason or ""),
            effect=f"message:{queued.message_id}" if queued.message_id else None,
        )

    def _issue_referral_code(self, step: Step) -> Outcome:
        from advocado.channels.config import messaging_config
        from advocado.services.programs import UnknownProgram, code_for, config_of, program_by_slug

        slug = step.params["program"]
        try:
            program = program_by_slug(self.session, slug)
        except UnknownProgram as error:
            return Outcome("skipped", f"{error} / 没有推荐计划 {slug}")
        code = code_for(self.session, program_slug=slug,
                        customer_external_id=self.customer.external_id)  # fmt: skip
        base = messaging_config().base_url
        self.context.update(code=code.code, share_url=f"{base}/r/{code.code}", program=slug,
                            offer=offer_text(config_of(program), self.customer.locale))  # fmt: skip
        return Outcome("issued", f"code {code.code} in {slug} / 推荐码 {code.code}",
                       effect=f"code:{code.code}")  # fmt: skip

    def _invite_challenge(self, step: Step) -> Outcome:
        from advocado.services import challenges

        wanted = step.params["challenge"]
        otherwise = step.params.get("otherwise")
        if wanted == "active":
            running = challenges.active_challenge(self.session, now=self.now)
            if running is None:
                reason = "no challenge running / 当前没有进行中的挑战赛"
                return Outcome("skipped", reason, goto=otherwise)
            wanted = running.slug
        try:
            invitation = challenges.invite(self.session, challenge=wanted,
                                           customer_id=self.customer.id,
                                           cause_key=self.key(step))  # fmt: skip
        except (challenges.UnknownChallenge, challenges.ChallengeNotRunning) as error:
            return Outcome("skipped", f"{error} / 挑战赛不可用", goto=otherwise)
        from advocado.channels.config import messaging_config

        challenge = challenges.challenge_by_slug(self.session, wanted)
        view = challenges.challenge_view(challenge, self.customer.locale, self.now)
        base = messaging_config().base_url
        self.context.update(
            challenge=challenge.slug, hashtag=view["hashtag"], prompt=view["prompt"] or "",
            prize=view["prize"] or "", entry_url=f"{base}{invitation.url_path}",
            ends_on=challenge.ends_at.date().isoformat(),
        )  # fmt: skip
        return Outcome("invited", f"challenge #{challenge.hashtag}# / 挑战赛 #{challenge.hashtag}#",
                       effect=f"invitation:{invitation.token}")  # fmt: skip

    def _add_tag(self, step: Step) -> Outcome:
        tag = step.params["tag"]
        tags = list(self.customer.tags or [])
        if tag in tags:
            return Outcome("unchanged", f"already tagged {tag} / 已有标签 {tag}")
        self.customer.tags = [*tags, tag]
        cohorts.mark_dirty(self.session, [self.customer.id])  # tags are a segment filter
        return Outcome("tagged", f"tag {tag} added / 添加标签 {tag}")

    def _remove_tag(self, step: Step) -> Outcome:
        tag = step.params["tag"]
        tags = list(self.customer.tags or [])
        if tag not in tags:
            return Outcome("unchanged", f"not tagged {tag} / 没有标签 {tag}")
        self.customer.tags = [t for t in tags if t != tag]
        cohorts.mark_dirty(self.session, [self.customer.id])
        return Outcome("untagged", f"tag {tag} removed / 移除标签 {tag}")

    def _call_webhook(self, step: Step) -> Outcome:
        body = json.dumps({
            "event": step.params["event"], "playbook": self.spec.name,
            "enrolment": self.enrolment.id, "step": step.id,
            "customer": {"external_id": self.customer.external_id, "email": self.customer.email},
            "context": _plain(self.context), "at": self.now.isoformat(),
        }, ensure_ascii=False).encode()  # fmt: skip
        status = post_signed(step.params["url"], body, key=self.key(step))
        return Outcome("called", f"HTTP {status} / 已调用", effect=f"webhook:{status}")

    def _create_task(self, step: Step) -> Outcome:
        from advocado.services.tasks import create_task

        params = step.params
        task = create_task(
            self.session, customer_id=self.customer.id, kind=params["kind"],
            title=rules.localized(params["title"], self.customer.locale),
            assignee_role=params["assignee_role"],
            due_at=self.now + timedelta(seconds=params["due_in"]),
            cause_key=self.key(step),
            script=rules.localized(params["script"], self.customer.locale) or None,
            context={"playbook": self.spec.name, "enrolment": self.enrolment.id,
                     **_plain(self.context)},
        )  # fmt: skip
        return Outcome("handed_off", f"task {params['kind']} for {params['assignee_role']}: the "
                                     f"automation ends / 转人工({params['kind']}),自动化结束",
                       effect=f"task:{task.id}", end="handed_off")  # fmt: skip

    def _exit(self, step: Step) -> Outcome:
        return Outcome("exited", step.params["reason"] or "exit / 退出", end="exited")


class _Moved(Exception):
    pass


def offer_text(config: Any, locale: str | None) -> str:
    """The double-sided offer in words, from the program's reward labels ("中文 / English"):
    what the advocate gets and what the friend gets, in the customer's language."""
    chinese = (locale or "").startswith("zh")

    def said(label: str) -> str:
        parts = [p.strip() for p in label.split(" / ")]
        if len(parts) < 2:
            return label.strip()
        return parts[0] if chinese else parts[1]

    mine = [said(r.label) for r in config.rules if r.to == "referrer" and r.label and not r.hidden]
    friend = [said(r.label) for r in config.rules if r.to == "referee" and r.label]
    if chinese:
        text = (f"好友首单立享{'、'.join(friend)}" if friend else "") + (
            f"；好友下单后您获得{'、'.join(mine)}" if mine else ""
        )
        return text.strip("；")
    text = (f"Your friend gets {', '.join(friend)}" if friend else "") + (
        f"; you get {', '.join(mine)} once they order" if mine else ""
    )
    return text.strip("; ")


def webhook_secret() -> bytes:
    secret = os.environ.get("ADVOCADO_WEBHOOK_SECRET") or settings().secret_key or ""
    return secret.encode()


def signature(body: bytes, secret: bytes | None = None) -> str:
    """`sha256=<hex HMAC of the body>`: the receiver recomputes it with the shared secret."""
    return "sha256=" + hmac.new(secret or webhook_secret(), body, hashlib.sha256).hexdigest()


def post_signed(url: str, body: bytes, *, key: str, timeout: float = 10.0) -> int:
    """POSTs a signed JSON body; `Idempotency-Key` lets the receiver drop a repeat (a webhook
    is at-least-once: a crash after the call and before the commit calls it again)."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Idempotency-Key": key,
        "X-Advocado-Signature": signature(body)})  # fmt: skip
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (http(s) only)
        return int(answer.status)


# Advances an enrolment still held by this worker on the step it ran (a Core statement: an
# ORM UPDATE would re-evaluate every object the session holds).
_ADVANCE = (
    update(Enrolment.__table__)
    .where(Enrolment.__table__.c.id == bindparam("b_id"),
           Enrolment.__table__.c.step == bindparam("b_step"),
           Enrolment.__table__.c.lease_owner == bindparam("b_owner"),
           Enrolment.__table__.c.status == "active")
    .values(step=bindparam("step"), status=bindparam("status"), due_at=bindparam("due_at"),
            context=bindparam("context"), end_reason=bindparam("end_reason"),
            updated_at=bindparam("updated_at"), lease_owner=None, lease_until=None,
            attempts=0, last_error=None)
)  # fmt: skip


def _write(session: Session, runners: list[_Runner]) -> None:
    """The step logs and the advance of these runners, in a few statements. A step already
    logged (unique enrolment+step) or an enrolment no longer held raises."""
    session.flush()  # the effects made through the ORM (tags)
    connection = session.connection()
    logged = [row for runner in runners for row in runner.logged]
    if logged:
        # The steps (and what they made: messages, codes, invitations, tasks) move the
        # activation figures of these enrolments (activation_aggregates), in this transaction.
        with activation_aggregates.changing(
            session, enrolments={row["enrolment_id"] for row in logged}
        ):
            connection.execute(EnrolmentStep.__table__.insert(), logged)
    advances = [runner.advance for runner in runners]
    if not advances:
        return
    changed = connection.execute(_ADVANCE, advances).rowcount
    if changed not in (-1, len(advances)):  # -1: the driver cannot tell
        raise _Moved()


def run_claimed(engine: Engine, *, ids: list[int], owner: str, now: datetime,
                chunk: int = 200) -> tuple[int, int]:  # fmt: skip
    """Runs the held enrolments, a transaction per chunk: first all at once (one savepoint,
    a few statements); if anything in the chunk fails, again one by one, a savepoint each, so
    one bad enrolment does not hold up the others. A step that raises is retried with
    backoff (1, 4, 16 … minutes); after MAX_ATTEMPTS the enrolment is `failed` (the
    dead-letter list) with the error kept."""
    steps = failed = 0
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        with unit_of_work(engine) as session:
            rows = session.execute(
                select(Enrolment, Customer, PlaybookVersion)
                .join(Customer, Customer.id == Enrolment.customer_id)
                .join(PlaybookVersion, PlaybookVersion.id == Enrolment.version_id)
                .where(Enrolment.id.in_(part), Enrolment.lease_owner == owner,
                       Enrolment.status == "active")
                .order_by(Enrolment.id)
            ).all()  # fmt: skip
            plan = [(e.id, e.step, c.id, spec_of(v)) for e, c, v in rows]
            try:
                with session.begin_nested():
                    runners = [_Runner(session, e, c, spec_of(v), now) for e, c, v in rows]
                    ran = sum(runner.run() for runner in runners)
                    _write(session, runners)
                steps += ran
                continue
            except Exception:  # noqa: BLE001 - redone one by one below, which tells who
                session.expire_all()
            for enrolment_id, _step, customer_id, spec in plan:
                enrolment = session.get(Enrolment, enrolment_id)
                customer = session.get(Customer, customer_id)
                if enrolment is None or customer is None or enrolment.lease_owner != owner:
                    continue
                savepoint = session.begin_nested()
                try:
                    runner = _Runner(session, enrolment, customer, spec, now)
                    ran = runner.run()
                    _write(session, [runner])
                    savepoint.commit()
                    steps += ran
                except (_Moved, IntegrityError):
                    savepoint.rollback()  # another worker did it: nothing to do
                except Exception as error:  # a step failed: retry later, then dead-letter
                    savepoint.rollback()
                    failed += 1
                    _failed(session, enrolment_id, error, now)
    return steps, failed


def _failed(session: Session, enrolment_id: int, error: Exception, now: datetime) -> None:
    attempts = (session.scalar(select(Enrolment.attempts).where(Enrolment.id == enrolment_id))
                or 0) + 1  # fmt: skip
    log.warning("enrolment %s failed (attempt %s): %r", enrolment_id, attempts, error)
    values: dict[str, Any] = {"attempts": attempts, "last_error": f"{type(error).__name__}: "
                              f"{error}"[:2000], "lease_owner": None, "lease_until": None,
                              "updated_at": now}  # fmt: skip
    if attempts >= MAX_ATTEMPTS:
        values.update(status="failed", end_reason=f"failed {attempts} times / 失败 {attempts} 次")
    else:
        values["due_at"] = now + timedelta(minutes=4 ** (attempts - 1))
    statement = update(Enrolment).where(Enrolment.id == enrolment_id).values(**values)
    session.connection().execute(statement)


def run_due_steps(engine: Engine, *, now: datetime | None = None, owner: str | None = None,
                  limit: int = 1000) -> RunReport:  # fmt: skip
    """Claims and runs due steps until none is due (or `limit` were claimed in one round and
    none remain); returns what was done."""
    now = now or clock.now()
    owner = owner or worker_id()
    report = RunReport()
    while True:
        ids = claim_due(engine, now=now, owner=owner, limit=limit)
        if not ids:
            return report
        report.claimed += len(ids)
        steps, failed = run_claimed(engine, ids=ids, owner=owner, now=now)
        report.steps += steps
        report.failed += failed


def run_once(engine: Engine, *, now: datetime | None = None, owner: str | None = None,
             deliver: bool = True) -> RunReport:  # fmt: skip
    """Everything due now, once: install the default playbook on a new database, enrol from
    pending events and state triggers, run due steps, deliver due messages, other periodic
    jobs. What `advocado worker --once` and each tick of `advocado worker` do."""
    now = now or clock.now()
    owner = owner or worker_id()
    with unit_of_work(engine) as session:
        install_default(session)
    enrolled = dispatch_events(engine, now=now) + scan_triggers(engine, now=now)
    report = run_due_steps(engine, now=now, owner=owner)
    report.enrolled = enrolled
    if deliver:
        report.delivered = _deliver(engine, now=now, owner=owner)
    _periodic(engine, now=now, report=report)
    if deliver:  # never from a simulation: it sends email (once per user and ISO week)
        from advocado.services import weekly

        report.extra["weekly_summaries"] = weekly.due_now(engine, now=now)
    return report


def _deliver(engine: Engine, *, now: datetime, owner: str, limit: int = 200) -> dict[str, int]:
    """Delivers due messages until none is left (messaging.deliver_due, batch by batch)."""
    from dataclasses import fields

    from advocado.services.messaging import deliver_due

    total: dict[str, int] = {}
    while True:
        report = deliver_due(engine, now=now, worker_id=owner, limit=limit)
        for f in fields(report):
            value = getattr(report, f.name)
            if isinstance(value, int):
                total[f.name] = total.get(f.name, 0) + value
        if report.claimed < limit:
            return total


def _periodic(engine: Engine, *, now: datetime, report: RunReport) -> None:
    """Other jobs that fall due with time: points and credit expiring (soonest first, once per
    lot; see services.ledger.expire_due), the dashboard's click roll-up, and the segment
    memberships of customers written since (services.cohorts)."""
    from advocado.services.click_rollup import catch_up

    with unit_of_work(engine) as session:
        report.extra["expired"] = ledger.expire_due(session, now=now)
    report.extra["clicks_rolled_up"] = catch_up(engine).clicks
    report.extra["cohort_customers_judged"] = cohorts.settle(engine)


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrolmentView:
    id: int
    playbook: str
    version: int
    customer: str
    cause: str
    status: str
    step: str | None
    due_at: datetime | None
    attempts: int
    last_error: str | None
    end_reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "playbook": self.playbook, "version": self.version,
                "customer": self.customer, "cause": self.cause, "status": self.status,
                "step": self.step, "due_at": self.due_at.isoformat() if self.due_at else None,
                "attempts": self.attempts, "last_error": self.last_error,
                "end_reason": self.end_reason}  # fmt: skip


def enrolments(session: Session, *, name: str, status: str | None = None,
               limit: int = 100, after: int | None = None) -> list[EnrolmentView]:  # fmt: skip
    """A playbook's enrolments (newest first), with their current step; status filters
    (`failed` is the dead-letter list)."""
    playbook = _find(session, name)
    query = (
        select(Enrolment, Customer.external_id, PlaybookVersion.version)
        .join(Customer, Customer.id == Enrolment.customer_id)
        .join(PlaybookVersion, PlaybookVersion.id == Enrolment.version_id)
        .where(Enrolment.playbook_id == playbook.id)
        .order_by(Enrolment.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(Enrolment.status == status)
    if after:
        query = query.where(Enrolment.id < after)
    return [
        EnrolmentView(e.id, playbook.name, version, external_id, e.cause, e.status, e.step,
                      e.due_at, e.attempts, e.last_error, e.end_reason)
        for e, external_id, version in session.execute(query)
    ]  # fmt: skip


def timeline(
    session: Session, *, customer_ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Steps run, in time order: (time, customer, playbook, step, action, outcome, reason)."""
    query = (
        select(EnrolmentStep, Enrolment.customer_id, Customer.external_id, Playbook.name)
        .join(Enrolment, Enrolment.id == EnrolmentStep.enrolment_id)
        .join(Customer, Customer.id == Enrolment.customer_id)
        .join(Playbook, Playbook.id == Enrolment.playbook_id)
        .order_by(EnrolmentStep.ran_at, EnrolmentStep.id)
    )
    if customer_ids is not None:
        query = query.where(Enrolment.customer_id.in_(list(customer_ids)))
    return [
        {"at": s.ran_at, "customer": external_id, "playbook": name, "step": s.step,
         "action": s.action, "outcome": s.outcome, "reason": s.reason, "effect": s.effect}
        for s, _cid, external_id, name in session.execute(query)
    ]  # fmt: skip


def status_counts(session: Session, *, name: str) -> dict[str, int]:
    """A playbook's enrolments by status."""
    playbook = _find(session, name)
    rows = session.execute(
        select(Enrolment.status, func.count())
        .where(Enrolment.playbook_id == playbook.id)
        .group_by(Enrolment.status)
    )
    return {status: n for status, n in rows}


# --- simulation ---------------------------------------------------------------------------


def simulate(
    engine: Engine, *, customer_external_ids: Sequence[str] | None, start: datetime,
    until: datetime, every: timedelta, enrol: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """What the playbooks would do to these customers from `start` to `until`: the worker is
    run with the clock moved by `every`, inside one transaction that is rolled back at the
    end (nothing kept, no message delivered: messages show as queued). The timeline of steps.
    """
    if every <= timedelta(0):
        raise ValueError("the clock step must be positive")
    with engine.connect() as connection:
        outer = connection.begin()
        # Inside a SAVEPOINT, every session of the run makes its own savepoint: a step that
        # fails rolls back to it, never the whole simulation.
        connection.begin_nested()
        try:
            with Session(connection, join_transaction_mode="create_savepoint") as session:
                install_default(session)
                session.flush()
                ids: list[int] | None = None
                if customer_external_ids:
                    found = dict(session.execute(
                        select(Customer.external_id, Customer.id).where(
                            Customer.external_id.in_(list(customer_external_ids)))
                    ).all())  # fmt: skip
                    missing = [e for e in customer_external_ids if e not in found]
                    if missing:
                        raise LookupError(f"no customer {missing[0]!r} / 没有客户 {missing[0]}")
                    ids = list(found.values())
                if enrol:
                    chosen = customer_external_ids or list(session.scalars(
                        select(Customer.external_id)))  # fmt: skip
                    with _pinned(start):
                        enrol_manually(session, name=enrol, customer_external_ids=chosen,
                                       key=f"simulation:{start.isoformat()}")  # fmt: skip
                session.flush()
            moment = start
            while moment <= until:
                with _pinned(moment):
                    run_once(connection, now=moment, owner="simulation", deliver=False)  # type: ignore[arg-type]
                moment += every
            with Session(connection, join_transaction_mode="create_savepoint") as session:
                return [line for line in timeline(session, customer_ids=ids)
                        if start <= line["at"] <= until]  # fmt: skip
        finally:
            outer.rollback()


class _pinned:
    """Pins the clock for a block (the simulation's moving time), then restores it."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __enter__(self) -> None:
        self.before = clock._pinned
        clock.set_now(self.moment)

    def __exit__(self, *_: object) -> None:
        clock.set_now(self.before)
