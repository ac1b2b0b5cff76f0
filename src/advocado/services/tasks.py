"""The human task queue: 1:1 tasks for a community manager (ambassador invites, detractor
follow-ups), their customer context, and their outcome.

`create_task` runs in the caller's transaction (a playbook step creates the task with the rest
of its effects) and is exactly-once by a unique key on the task's cause."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain import tasks as rules
from advocado.domain.nps import category
from advocado.domain.roles import role as parse_role
from advocado.services import activation_aggregates
from advocado.store.models import Customer, CustomerInsight, Response, Task, User

FILTERS = ("open", "overdue", "mine", "done", "all")


class TaskNotFound(LookupError):
    pass


class OutcomeAlreadyRecorded(rules.TaskError):
    def __init__(self, task: Task) -> None:
        super().__init__(
            "outcome",
            f"already recorded: {task.outcome} by {task.outcome_by} at "
            f"{task.outcome_at:%Y-%m-%d %H:%M} UTC",
        )
        self.task = task


def _insert(session: Session) -> Any:
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


def create_task(
    session: Session,
    *,
    customer_id: int,
    kind: str,
    title: str,
    assignee_role: str = "community",
    due_at: datetime,
    cause_key: str,
    script: str | None = None,
    context: Mapping[str, Any] | None = None,
    assignee_user_id: int | None = None,
) -> Task:
    """The task for `cause_key`, created if it does not exist yet (in the caller's transaction).
    A second call with the same cause_key returns the first task unchanged, even when two
    transactions race: the insert is ON CONFLICT DO NOTHING on the unique cause_key.
    `script` None: the shipped script for `kind` in the customer's locale. `assignee_user_id`
    names one person; otherwise anyone of `assignee_role` picks it up."""
    key = (cause_key or "").strip()
    if not key or len(key) > 250:
        raise rules.TaskError("cause_key", "required, at most 250 characters")
    existing = session.scalar(select(Task).where(Task.cause_key == key))
    if existing is not None:
        return existing
    heading = (title or "").strip()
    if not heading or len(heading) > 300:
        raise rules.TaskError("title", "required, at most 300 characters")
    kind_name = (kind or "").strip()
    if not kind_name or len(kind_name) > 40:
        raise rules.TaskError("kind", "required, at most 40 characters")
    try:
        assignee = parse_role(assignee_role).value
    except ValueError as error:
        raise rules.TaskError("assignee_role", str(error)) from None
    if due_at.tzinfo is None:
        raise rules.TaskError("due_at", "has no UTC offset")
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise rules.TaskError("customer_id", f"no customer {customer_id}")
    if assignee_user_id is not None and session.get(User, assignee_user_id) is None:
        raise rules.TaskError("assignee_user_id", f"no user {assignee_user_id}")
    text = script if script and script.strip() else None
    if text is None:
        text = rules.default_script(kind_name, customer.locale, customer.name)
    session.execute(
        _insert(session)(Task)
        .values(
            cause_key=key, customer_id=customer_id, kind=kind_name, title=heading,
            assignee_role=assignee, assignee_user_id=assignee_user_id, due_at=due_at,
            script=text, context=dict(context or {}),
            done=False, created_at=clock.now(),
        )
        .on_conflict_do_nothing(index_elements=[Task.cause_key])
    )  # fmt: skip
    task = session.scalar(
        select(Task).where(Task.cause_key == key).execution_options(populate_existing=True)
    )
    assert task is not None  # inserted now, or by the transaction we waited for
    return task


# --- reading the queue -----------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRow:
    id: int
    kind: str
    title: str
    customer_id: int
    customer_name: str | None
    customer_external_id: str
    assignee_role: str
    assignee_user_id: int | None
    due_at: datetime
    overdue: bool
    done: bool
    outcome: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "title": self.title,
            "customer": {"id": self.customer_id, "name": self.customer_name,
                         "external_id": self.customer_external_id},
            "assignee_role": self.assignee_role, "assignee_user_id": self.assignee_user_id,
            "due_at": self.due_at.isoformat(), "overdue": self.overdue, "done": self.done,
            "outcome": self.outcome,
        }  # fmt: skip


def _query(
    *, status: str, kind: str | None, user_id: int | None, user_role: str | None, now: datetime
) -> Select[Any]:
    if status not in FILTERS:
        raise rules.TaskError("status", f"{status!r} is not one of {', '.join(FILTERS)}")
    query = select(Task, Customer.name, Customer.external_id).join(
        Customer, Customer.id == Task.customer_id
    )
    if status in ("open", "overdue", "mine"):
        query = query.where(Task.done.is_(False))
    if status == "overdue":
        query = query.where(Task.due_at < now)
    if status == "done":
        query = query.where(Task.done.is_(True))
    if status == "mine":
        # Assigned to me by name, or unassigned and for my role.
        mine = Task.assignee_user_id == (user_id or -1)
        for_role = and_(Task.assignee_user_id.is_(None), Task.assignee_role == (user_role or ""))
        query = query.where(or_(mine, for_role))
    if kind:
        query = query.where(Task.kind == kind)
    rank = case((Task.done.is_(True), 2), (Task.due_at < now, 0), else_=1)
    return query.order_by(rank, Task.due_at, Task.id)


def list_tasks(
    session: Session,
    *,
    status: str = "open",
    kind: str | None = None,
    user_id: int | None = None,
    user_role: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[TaskRow]:
    """Overdue first (most overdue on top), then open by due date, then done."""
    now = clock.now()
    query = _query(status=status, kind=kind, user_id=user_id, user_role=user_role, now=now)
    rows = session.execute(query.limit(min(max(limit, 1), 500)).offset(max(offset, 0)))
    return [
        TaskRow(
            id=task.id, kind=task.kind, title=task.title, customer_id=task.customer_id,
            customer_name=name, customer_external_id=external_id,
            assignee_role=task.assignee_role, assignee_user_id=task.assignee_user_id,
            due_at=task.due_at, overdue=rules.is_overdue(task.due_at, task.done, now),
            done=task.done, outcome=task.outcome,
        )
        for task, name, external_id in rows
    ]  # fmt: skip


def count_tasks(session: Session) -> dict[str, int]:
    now = clock.now()
    open_, overdue = session.execute(
        select(
            func.count().filter(Task.done.is_(False)),
            func.count().filter(and_(Task.done.is_(False), Task.due_at < now)),
        )
    ).one()
    return {"open": open_ or 0, "overdue": overdue or 0}


def _customer_context(session: Session, customer: Customer) -> dict[str, Any]:
    """What the person calling should know: latest score and comment (with the words that
    decided its persona), influence and value with their explanations."""
    latest = session.scalar(
        select(Response)
        .where(Response.customer_id == customer.id)
        .order_by(Response.submitted_at.desc(), Response.id.desc())
        .limit(1)
    )
    insight = session.get(CustomerInsight, customer.id)
    return {
        "id": customer.id,
        "external_id": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "phone": customer.phone,
        "locale": customer.locale,
        "timezone": customer.timezone,
        "latest_response": None
        if latest is None
        else {
            "score": latest.score,
            "category": category(latest.score).value,
            "comment": latest.comment,
            "persona": latest.persona,
            "evidence": list(latest.evidence or []),
            "submitted_at": latest.submitted_at.isoformat(),
        },
        "influence_score": None if insight is None else insight.influence_score,
        "high_influence": bool(insight and insight.high_influence),
        "influence_explanation": None if insight is None else insight.influence_explanation,
        "value_tier": None if insight is None else insight.value_tier,
        "value_explanation": None if insight is None else insight.value_explanation,
    }


def task_detail(session: Session, *, task_id: int) -> dict[str, Any]:
    task = session.get(Task, task_id)
    if task is None:
        raise TaskNotFound(f"no task {task_id}")
    customer = session.get(Customer, task.customer_id)
    assert customer is not None
    assignee = session.get(User, task.assignee_user_id) if task.assignee_user_id else None
    now = clock.now()
    return {
        "id": task.id,
        "kind": task.kind,
        "title": task.title,
        "assignee_role": task.assignee_role,
        "assignee_user_id": task.assignee_user_id,
        "assignee_email": assignee.email if assignee else None,
        "due_at": task.due_at.isoformat(),
        "overdue": rules.is_overdue(task.due_at, task.done, now),
        "script": task.script,
        "context": task.context,
        "cause_key": task.cause_key,
        "done": task.done,
        "outcome": task.outcome,
        "outcome_note": task.outcome_note,
        "outcome_by": task.outcome_by,
        "outcome_at": task.outcome_at.isoformat() if task.outcome_at else None,
        "created_at": task.created_at.isoformat(),
        "customer": _customer_context(session, customer),
    }


def record_outcome(
    session: Session, *, task_id: int, outcome: str, note: str | None, by: str
) -> Task:
    """Close the task with its outcome, once: one conditional UPDATE, so two people saving at
    the same moment cannot both win. The same outcome again is accepted (a retried request);
    a different one raises OutcomeAlreadyRecorded naming who recorded what and when."""
    chosen = rules.outcome(outcome)
    text = rules.note(note)
    now = clock.now()
    cause_key = session.scalar(select(Task.cause_key).where(Task.id == task_id))
    # The outcome moves the funnel's level 4 of the enrolment that handed the task over
    # (activation_aggregates), in this transaction.
    with activation_aggregates.changing(
        session, enrolments=[activation_aggregates.enrolment_of_cause(cause_key)]
    ):
        changed = session.execute(
            update(Task)
            .where(Task.id == task_id, Task.done.is_(False))
            .values(
                done=True, outcome=chosen.value, outcome_note=text, outcome_by=by, outcome_at=now
            )  # fmt: skip
            .execution_options(synchronize_session=False)
        ).rowcount
    task = session.scalar(
        select(Task).where(Task.id == task_id).execution_options(populate_existing=True)
    )
    if task is None:
        raise TaskNotFound(f"no task {task_id}")
    if not changed and task.outcome != chosen.value:
        raise OutcomeAlreadyRecorded(task)
    return task


def assign_task(session: Session, *, task_id: int, user_id: int | None) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise TaskNotFound(f"no task {task_id}")
    if user_id is not None and session.get(User, user_id) is None:
        raise rules.TaskError("assignee_user_id", f"no user {user_id}")
    task.assignee_user_id = user_id
    return task
