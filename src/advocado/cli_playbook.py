"""`advocado playbook …` and `advocado worker`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from advocado import clock
from advocado.store.db import default_engine, read_only, unit_of_work

playbook_app = typer.Typer(
    help="Playbooks: the automations (list, show, apply, enable, disable, enrol, simulate).",
    no_args_is_help=True,
)
err = Console(stderr=True)
out = Console()
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        err.print(f"--now {text!r}: expected ISO 8601 such as 2026-03-01T09:00:00+08:00")
        raise typer.Exit(2) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _ready() -> None:
    from advocado.services.playbooks import install_default

    with unit_of_work(default_engine()) as session:
        install_default(session)


@playbook_app.command("list")
def playbook_list(as_json: JsonOption = False) -> None:
    """Every playbook: enabled, version, triggers, enrolments running and ended."""
    from advocado.services.playbooks import list_playbooks

    _ready()
    with read_only(default_engine()) as session:
        views = list_playbooks(session)
    if as_json:
        print(json.dumps([v.as_dict() for v in views], ensure_ascii=False, indent=2))
        return
    table = Table("name", "title", "enabled", "version", "triggers", "running", "ended")
    for v in views:
        table.add_row(
            v.name,
            v.title.get("en", ""),
            "yes" if v.enabled else "no",
            str(v.version),
            ", ".join(v.triggers),
            str(v.active),
            str(v.ended),
        )
    out.print(table)


@playbook_app.command("show")
def playbook_show(name: str) -> None:
    """The playbook's current YAML (its newest version)."""
    from advocado.services.playbooks import UnknownPlaybook, get_playbook

    _ready()
    try:
        with read_only(default_engine()) as session:
            view = get_playbook(session, name=name)
    except UnknownPlaybook as error:
        err.print(str(error), markup=False)
        raise typer.Exit(1) from None
    print(f"# {view.name} v{view.version} ({'enabled' if view.enabled else 'disabled'})")
    print(view.source, end="")


@playbook_app.command("apply")
def playbook_apply(file: Path) -> None:
    """Create or update a playbook from a YAML (or JSON) file. A changed text is a new version;
    enrolments running finish on theirs. Errors name the file, line and field."""
    from advocado.domain.playbooks import PlaybookError
    from advocado.services import audit
    from advocado.services.playbooks import apply_source

    try:
        source = file.read_text(encoding="utf-8")
    except OSError as error:
        err.print(f"{file}: {error.strerror}", markup=False)
        raise typer.Exit(2) from None
    _ready()
    try:
        with unit_of_work(default_engine()) as session:
            applied = apply_source(session, source=source, file=str(file), actor=audit.CLI)
    except PlaybookError as error:
        err.print(str(error), markup=False, style="red")
        raise typer.Exit(2) from None
    word = "created" if applied.created else ("updated" if applied.changed else "unchanged")
    print(f"{applied.name} v{applied.version} {word}")


def _enable(name: str, enabled: bool) -> None:
    from advocado.services import audit
    from advocado.services.playbooks import UnknownPlaybook, set_enabled

    _ready()
    try:
        with unit_of_work(default_engine()) as session:
            view = set_enabled(session, name=name, enabled=enabled, actor=audit.CLI)
    except UnknownPlaybook as error:
        err.print(str(error), markup=False)
        raise typer.Exit(1) from None
    print(f"{view.name} {'enabled' if view.enabled else 'disabled'}")


@playbook_app.command("enable")
def playbook_enable(name: str) -> None:
    """Enrol customers again on the playbook's triggers."""
    _enable(name, True)


@playbook_app.command("disable")
def playbook_disable(name: str) -> None:
    """Enrol no one new (customers already in it finish)."""
    _enable(name, False)


@playbook_app.command("enrol")
def playbook_enrol(
    name: str,
    customers: Annotated[list[str], typer.Argument(help="customer external ids")],
    key: Annotated[str | None, typer.Option(help="the same key again enrols no one twice")] = None,
) -> None:
    """Manual enrolment (through the playbook's conditions)."""
    from advocado.services.playbooks import UnknownPlaybook, enrol_manually

    _ready()
    try:
        with unit_of_work(default_engine()) as session:
            made = enrol_manually(session, name=name, customer_external_ids=customers, key=key)
    except (UnknownPlaybook, LookupError) as error:
        err.print(str(error), markup=False)
        raise typer.Exit(1) from None
    print(f"{made} enrolled")


@playbook_app.command("enrolments")
def playbook_enrolments(
    name: str,
    status: Annotated[str | None, typer.Option(help="active, completed, exited, handed_off, "
                                                    "failed (the dead letters)")] = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """A playbook's enrolments, newest first, with their current step."""
    from advocado.services.playbooks import UnknownPlaybook, enrolments

    try:
        with read_only(default_engine()) as session:
            rows = enrolments(session, name=name, status=status, limit=1000)
    except UnknownPlaybook as error:
        err.print(str(error), markup=False)
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps([r.as_dict() for r in rows], ensure_ascii=False, indent=2))
        return
    for r in rows:
        due = r.due_at.isoformat() if r.due_at else "-"
        print(f"{r.id}\t{r.customer}\tv{r.version}\t{r.status}\t{r.step or '-'}\t{due}\t"
              f"{r.end_reason or r.last_error or ''}")  # fmt: skip


@playbook_app.command("simulate")
def playbook_simulate(
    customers: Annotated[list[str] | None, typer.Argument(help="customer external ids "
                                                          "(default: every customer)")] = None,
    days: Annotated[float, typer.Option(help="how far ahead")] = 7,
    enrol: Annotated[str | None, typer.Option(help="also enrol them in this playbook now")] = None,
    step: Annotated[str, typer.Option(help="clock step, e.g. 1h or 15m")] = "1h",
    now: Annotated[str | None, typer.Option(help="start (ISO 8601; default now)")] = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """What happens to these customers over the next N days: the worker is run with the
    clock moved forward step by step, inside one database transaction that is rolled back at
    the end (nothing is kept, no message is sent). Prints the timeline."""
    from advocado.domain.playbooks import parse_duration
    from advocado.services.playbooks import simulate

    _ready()
    start = _moment(now) or clock.now()
    try:
        interval = parse_duration(step)
    except ValueError as error:
        err.print(f"--step: {error}", markup=False)
        raise typer.Exit(2) from None
    try:
        lines = simulate(default_engine(), customer_external_ids=customers or None,
                         start=start, until=start + timedelta(days=days), every=interval,
                         enrol=enrol)  # fmt: skip
    except LookupError as error:
        err.print(str(error), markup=False)
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(lines, ensure_ascii=False, indent=2, default=str))
        return
    if not lines:
        print("nothing happens in this period / 这段时间内没有任何动作")
    for line in lines:
        offset = line["at"] - start
        hours = offset.total_seconds() / 3600
        print(
            f"+{hours:5.1f}h  {line['at']:%Y-%m-%d %H:%M}  {line['customer']:<16} "
            f"{line['playbook']}/{line['step']:<20} {line['outcome']:<10} {line['reason']}"
        )


def worker(
    once: Annotated[bool, typer.Option("--once", help="run everything due now and exit")] = False,
    now: Annotated[str | None, typer.Option(help="the clock (ISO 8601); ADVOCADO_NOW works "
                                                 "too")] = None,
    workers: Annotated[int, typer.Option(help="huey worker threads")] = 1,
) -> None:  # fmt: skip
    """Run due playbook steps, deliver due messages, and other timed jobs, through huey
    (SqliteHuey beside the database; RedisHuey with ADVOCADO_HUEY_URL=redis://…)."""
    moment = _moment(now)
    if moment is not None:
        clock.set_now(moment)
    if once:
        from advocado.services.playbooks import run_once

        report = run_once(default_engine())
        print(json.dumps(report.as_dict(), ensure_ascii=False, default=str))
        return
    from advocado.worker.huey_app import serve

    serve(workers=workers)
