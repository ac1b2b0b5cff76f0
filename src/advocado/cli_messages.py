"""`advocado messages …`: the message log, retry of dead letters, the suppression list, and a
delivery run (the worker calls the same deliver_due)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from advocado.store.db import default_engine

messages_app = typer.Typer(help="Messages: log, retry, suppression list.", no_args_is_help=True)
err = Console(stderr=True)


def _fail(error: Exception) -> None:
    err.print(f"[red]{error}[/red]", markup=False)
    raise typer.Exit(2) from None


@messages_app.command("list")
def list_messages(
    status: Annotated[str | None, typer.Option(help="queued, skipped, sent, dead, …")] = None,
    template: Annotated[str | None, typer.Option()] = None,
    reason: Annotated[str | None, typer.Option(help="A reason code, e.g. no_consent.")] = None,
    limit: Annotated[int, typer.Option()] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The newest messages: id, status, customer, template, and why (for skips and failures)."""
    from advocado.services.messaging import MessagingError, list_messages

    try:
        rows = list_messages(default_engine(), status=status, template=template, reason=reason,
                             limit=limit)  # fmt: skip
    except MessagingError as error:
        _fail(error)
    for row in rows:
        if as_json:
            print(json.dumps(row, ensure_ascii=False, default=str))
        else:
            print(f"{row['id']}\t{row['status']}\t{row['customer_external_id']}\t"
                  f"{row['template']}\t{row['channel']}\t{row['reason'] or ''}")  # fmt: skip


@messages_app.command("retry")
def retry(message_id: int) -> None:
    """Queue a dead, uncertain or bounced message again (an uncertain one may then arrive
    twice: that is the operator's call, and it is recorded)."""
    from advocado.services.messaging import MessagingError, retry_message

    try:
        status = retry_message(default_engine(), message_id=message_id, actor="cli")
    except MessagingError as error:
        _fail(error)
    print(f"{message_id}\t{status}")


@messages_app.command("suppress")
def suppress(
    kind: Annotated[str | None, typer.Argument(help="email, phone or customer (id)")] = None,
    value: Annotated[str | None, typer.Argument()] = None,
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "",
    show: Annotated[bool, typer.Option("--list", help="Print the suppression list.")] = False,
) -> None:
    """Add an address or customer to the suppression list (no marketing, ever), or --list."""
    from advocado.services.messaging import MessagingError, add_suppression, list_suppressions

    if show or kind is None:
        for row in list_suppressions(default_engine()):
            print(f"{row['kind']}\t{row['value']}\t{row['created_at'].isoformat()}\t"
                  f"{row['reason']}")  # fmt: skip
        return
    if value is None:
        _fail(ValueError("value: required, e.g. `advocado messages suppress email a@b.com`"))
    try:
        added = add_suppression(default_engine(), kind=kind, value=value or "", reason=reason)
    except MessagingError as error:
        _fail(error)
    print("added" if added else "already suppressed")


@messages_app.command("deliver")
def deliver(
    limit: Annotated[int, typer.Option(help="At most this many messages.")] = 200,
    worker: Annotated[str, typer.Option(help="Lease holder name.")] = "cli",
) -> None:
    """Send what is due now, once (the worker does this continuously)."""
    from advocado.services.messaging import deliver_due

    report = deliver_due(default_engine(), limit=limit, worker_id=worker)
    print(json.dumps({k: v for k, v in report.__dict__.items() if k != "outcomes"}))
