"""`advocado challenge …` and `advocado task …` (UGC challenges and the human task queue)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import select

from advocado.store.db import default_engine, read_only, unit_of_work

challenge_app = typer.Typer(help="UGC challenges (from YAML files), invitations, entries.",
                            no_args_is_help=True)  # fmt: skip
task_app = typer.Typer(help="The human task queue.", no_args_is_help=True)

err = Console(stderr=True, soft_wrap=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@challenge_app.command("apply")
def challenge_apply(file: Path) -> None:
    """Create or update a challenge from a YAML (or JSON) file; prints its slug."""
    from advocado.domain.challenges import ChallengeError
    from advocado.services.challenges import apply_challenge, read_challenge_file

    try:
        data = read_challenge_file(file)
        with unit_of_work(default_engine()) as session:
            applied = apply_challenge(session, data)
    except ChallengeError as error:
        err.print(f"{file}: {error.field}: {error.reason}", style="red", markup=False)
        raise typer.Exit(2) from None
    err.print(f"challenge {'created' if applied.created else 'updated'}", markup=False)
    print(applied.slug)


@challenge_app.command("list")
def challenge_list(as_json: JsonOption = False) -> None:
    """Every challenge with its dates and entry counts."""
    from advocado.services.challenges import list_challenges

    with read_only(default_engine()) as session:
        found = list_challenges(session)
    if as_json:
        print(json.dumps(found, ensure_ascii=False, default=str))
        return
    for c in found:
        entries = c["entries"]
        state = "running" if c["running"] else "not running"
        print(f"{c['slug']}  {c['hashtag']}  {c['starts_at'][:10]}..{c['ends_at'][:10]} "
              f"({state})  invited {c['invited']}, pending {entries['pending']}, approved "
              f"{entries['approved']}, featured {entries['featured']}, rejected "
              f"{entries['rejected']}")  # fmt: skip


@challenge_app.command("invite")
def challenge_invite(
    challenge: Annotated[str, typer.Option(help="The challenge's slug.")],
    customer: Annotated[str, typer.Option(help="The customer's external id.")],
    cause: Annotated[
        str | None, typer.Option(help="Cause key (default manual:<slug>:<id>).")
    ] = None,
) -> None:
    """Invite a customer (once); prints the path of their entry page, /c/<token>."""
    from advocado.domain.challenges import ChallengeError
    from advocado.services.challenges import ChallengeNotRunning, UnknownChallenge, invite
    from advocado.store.models import Customer

    try:
        with unit_of_work(default_engine()) as session:
            customer_id = session.scalar(
                select(Customer.id).where(Customer.external_id == customer)
            )
            if customer_id is None:
                raise ChallengeError("customer", f"no customer {customer!r}")
            found = invite(session, challenge=challenge, customer_id=customer_id,
                           cause_key=cause or f"manual:{challenge}:{customer}")  # fmt: skip
    except (ChallengeError, ChallengeNotRunning, UnknownChallenge) as error:
        err.print(str(error), style="red", markup=False)
        raise typer.Exit(2) from None
    print(found.url_path)


@task_app.command("list")
def task_list(
    status: Annotated[str, typer.Option(help="open, overdue, done or all.")] = "open",
    kind: Annotated[str | None, typer.Option(help="e.g. ambassador_invite.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Tasks, overdue first."""
    from advocado.domain.tasks import TaskError
    from advocado.services.tasks import list_tasks

    try:
        with read_only(default_engine()) as session:
            rows = list_tasks(session, status=status, kind=kind, limit=500)
    except TaskError as error:
        err.print(str(error), style="red", markup=False)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps([r.as_dict() for r in rows], ensure_ascii=False))
        return
    for r in rows:
        flag = " OVERDUE" if r.overdue else ""
        print(f"#{r.id} due {r.due_at:%Y-%m-%d %H:%M}{flag}  {r.kind}  "
              f"{r.customer_name or r.customer_external_id}: {r.title}"
              f"{'  -> ' + r.outcome if r.outcome else ''}")  # fmt: skip


@task_app.command("done")
def task_done(
    task_id: int,
    outcome: Annotated[str, typer.Option(help="accepted, declined or no_answer.")],
    by: Annotated[str, typer.Option(help="Who made the call (recorded).")],
    note: Annotated[str | None, typer.Option(help="What was said.")] = None,
) -> None:
    """Record a task's outcome (once)."""
    from advocado.domain.tasks import TaskError
    from advocado.services.tasks import TaskNotFound, record_outcome

    try:
        with unit_of_work(default_engine()) as session:
            record_outcome(session, task_id=task_id, outcome=outcome, note=note, by=by)
    except (TaskError, TaskNotFound) as error:
        err.print(str(error), style="red", markup=False)
        raise typer.Exit(2) from None
    print(f"#{task_id} {outcome}")
