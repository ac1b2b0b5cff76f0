"""`advocado report …`: the weekly summary email (services/weekly.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from advocado.store.db import default_engine, unit_of_work

report_app = typer.Typer(help="Reports: the weekly summary email.", no_args_is_help=True)
err = Console(stderr=True)


@report_app.command("weekly")
def report_weekly(
    week: Annotated[
        str | None, typer.Option(help="ISO week, e.g. 2026-W47 (default: the one due now).")
    ] = None,
    to: Annotated[
        str | None, typer.Option(help="Only this console user (by email), opted in or not.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the emails; send and record nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Send the weekly summary (once per user and week: a second run sends nothing more; an
    `uncertain` send is never resent automatically). Exit 2 for bad input."""
    from advocado.domain.records import FieldError
    from advocado.services.weekly import send_weekly

    try:
        run = send_weekly(default_engine(), week=week, to=to, dry_run=dry_run)
    except FieldError as error:
        err.print(str(error), markup=False)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(run.as_dict(), ensure_ascii=False))
        return
    if run.week is None:
        print("no weekly summary is due now (see `advocado report schedule`) / 当前无需发送")
        return
    for preview in run.previews:
        print(f"--- to {preview['to']} ({preview['locale']}): {preview['subject']}")
        print(preview["text"])
    print(
        f"{run.week}: {run.recipients} recipients, {run.sent} sent, {run.already} already "
        f"done, {run.retry} to retry, {run.bounced} bounced, {run.uncertain} uncertain"
    )


@report_app.command("schedule")
def report_schedule(
    day: Annotated[str | None, typer.Option(help="mon … sun")] = None,
    hour: Annotated[int | None, typer.Option(help="0-23, in the brand time zone")] = None,
    timezone: Annotated[str | None, typer.Option(help="e.g. Asia/Shanghai")] = None,
) -> None:
    """Show (or set) when the weekly summary goes out: day, hour, brand time zone."""
    from advocado.domain.records import FieldError
    from advocado.services import audit, weekly

    with unit_of_work(default_engine()) as session:
        found = weekly.schedule(session)
        if day is not None or hour is not None or timezone is not None:
            try:
                found = weekly.set_schedule(
                    session,
                    day=day if day is not None else found.weekday,
                    hour=hour if hour is not None else found.hour,
                    timezone=timezone or found.timezone,
                    actor=audit.CLI,
                )
            except FieldError as error:
                err.print(str(error), markup=False)
                raise typer.Exit(2) from None
    print(f"{weekly.DAYS[found.weekday]} {found.hour:02d}:00 {found.timezone}")


@report_app.command("subscribe")
def report_subscribe(
    email: str,
    locale: Annotated[str, typer.Option(help="en, zh-CN or zh-TW")] = "en",
    off: Annotated[bool, typer.Option("--off", help="Stop sending it to this user.")] = False,
) -> None:
    """Turn the weekly summary on (or off) for a console user, in their language."""
    from advocado.domain.records import FieldError
    from advocado.services import audit, weekly

    try:
        with unit_of_work(default_engine()) as session:
            user = weekly.set_preferences(
                session, email=email, weekly_summary=not off, locale=locale, actor=audit.CLI
            )
            state = "on" if user.weekly_summary else "off"
            print(f"{user.email}: weekly summary {state} ({user.locale})")
    except FieldError as error:
        err.print(str(error), markup=False)
        raise typer.Exit(2) from None
