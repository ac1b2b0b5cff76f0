"""The `advocado` command."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from advocado.cli_insights import insights_app
from advocado.cli_voc import voc_app
from advocado.store.db import default_engine, make_engine, read_only, unit_of_work, upgrade

app = typer.Typer(
    help="Advocado: turn the customers who love your brand into its advocates.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
import_app = typer.Typer(
    help="Import customers, orders, NPS responses or social profiles from CSV.",
    no_args_is_help=True,
)
apikey_app = typer.Typer(
    help="API keys for integrators (create, list, revoke).", no_args_is_help=True
)
user_app = typer.Typer(help="Console users.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(apikey_app, name="apikey")
app.add_typer(user_app, name="user")
app.add_typer(insights_app, name="insights")
app.add_typer(voc_app, name="voc")

err = Console(stderr=True)
out = Console()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema (creates it if new)."""
    before, after = upgrade(make_engine())
    out.print(f"database at revision {after}" + (f" (was {before})" if before != after else ""))


def _import(
    kind: str,
    file: Path,
    maps: list[str],
    date_format: str | None,
    timezone: str,
    strict: bool,
    rejects: Path | None,
    amount_unit: str,
    as_json: bool,
) -> None:
    from advocado.services.importing import ImportError_, ImportOptions, Kind, import_file

    mapping: dict[str, str] = {}
    for item in maps:
        name, sep, column = item.partition("=")
        if not sep or not name.strip() or not column.strip():
            err.print(f"[red]--map {item!r}: expected field=COLUMN[/red]")
            raise typer.Exit(2)
        mapping[name.strip()] = column.strip()
    if not file.is_file():
        err.print(f"[red]{file}: no such file[/red]")
        raise typer.Exit(2)
    options = ImportOptions(mapping=mapping, date_format=date_format, timezone=timezone,
                            strict=strict, amount_unit=amount_unit)  # fmt: skip
    engine = default_engine()
    progress = Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
        TimeRemainingColumn(), console=err, transient=True, disable=not err.is_terminal,
    )  # fmt: skip
    with progress:
        task = progress.add_task(f"importing {kind}", total=file.stat().st_size)
        try:
            summary = import_file(
                engine, Kind(kind), file, options, rejects_path=rejects,
                on_bytes=lambda n: progress.advance(task, n),
            )  # fmt: skip
        except ImportError_ as error:
            err.print(f"[red]{file}: {error}[/red]")
            raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        print(
            f"{kind} from {file} ({summary.encoding}): {summary.rows} rows, "
            f"{summary.created} created, {summary.updated} updated, "
            f"{summary.unchanged} unchanged, {summary.rejected} rejected"
        )
        for reject in summary.first_rejects:
            err.print(f"  line {reject.line}: {reject.field}: {reject.reason}")
        if summary.rejected > len(summary.first_rejects):
            err.print(f"  … and {summary.rejected - len(summary.first_rejects)} more")
        if summary.rejects_path:
            err.print(f"rejected rows written to {summary.rejects_path}")
        if summary.aborted:
            err.print("[red]--strict: nothing was imported because of the rows above[/red]")
    if summary.aborted:
        raise typer.Exit(1)


MapOption = Annotated[
    list[str],
    typer.Option(
        "--map", help="field=COLUMN, repeatable: read a field from a differently named column."
    ),
]  # noqa: E501
DateFormatOption = Annotated[
    str | None,
    typer.Option(help="strftime format of the dates, e.g. '%d/%m/%Y %H:%M' (default ISO 8601)."),
]  # noqa: E501
TimezoneOption = Annotated[
    str, typer.Option("--timezone", help="Time zone of dates written without an offset.")
]  # noqa: E501
StrictOption = Annotated[
    bool, typer.Option(help="Any bad row aborts the whole import; nothing is written.")
]  # noqa: E501
RejectsOption = Annotated[
    Path | None, typer.Option(help="Where to write rejected rows (default: ./<file>.rejects.csv).")
]  # noqa: E501
JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]


@import_app.command("customers")
def import_customers(
    file: Path, map: MapOption = [], date_format: DateFormatOption = None,  # noqa: B006
    timezone: TimezoneOption = "UTC", strict: StrictOption = False,
    rejects: RejectsOption = None, json_: JsonOption = False,
) -> None:  # fmt: skip
    """Customers: external_id, name, email, phone, locale, timezone, marketing_consent, tags.
    Other columns are kept as free attributes."""
    _import("customers", file, map, date_format, timezone, strict, rejects, "major", json_)


@import_app.command("orders")
def import_orders(
    file: Path, map: MapOption = [], date_format: DateFormatOption = None,  # noqa: B006
    timezone: TimezoneOption = "UTC", strict: StrictOption = False,
    rejects: RejectsOption = None, json_: JsonOption = False,
    amount_unit: Annotated[str, typer.Option(help="'major' (199.00) or 'minor' (19900)")] = "major",
) -> None:  # fmt: skip
    """Orders: external_id, customer_external_id, amount, currency, status, placed_at."""
    if amount_unit not in ("major", "minor"):
        err.print("[red]--amount-unit must be 'major' or 'minor'[/red]")
        raise typer.Exit(2)
    _import("orders", file, map, date_format, timezone, strict, rejects, amount_unit, json_)


@import_app.command("responses")
def import_responses(
    file: Path, map: MapOption = [], date_format: DateFormatOption = None,  # noqa: B006
    timezone: TimezoneOption = "UTC", strict: StrictOption = False,
    rejects: RejectsOption = None, json_: JsonOption = False,
) -> None:  # fmt: skip
    """NPS responses: external_id, customer_external_id, score, comment, survey, channel,
    submitted_at."""
    _import("responses", file, map, date_format, timezone, strict, rejects, "major", json_)


@import_app.command("social")
def import_social(
    file: Path, map: MapOption = [], strict: StrictOption = False,  # noqa: B006
    rejects: RejectsOption = None, json_: JsonOption = False,
) -> None:  # fmt: skip
    """Social profiles: customer_external_id, platform, handle, followers, engagement_rate
    (0.035 or 3.5%), brand_mentions, vertical. One profile per customer and platform; the
    customers' influence is re-scored at once."""
    _import("social", file, map, None, "UTC", strict, rejects, "major", json_)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        err.print(f"[red]{option} {value!r}: expected a date such as 2026-01-31[/red]")
        raise typer.Exit(2) from None


@app.command()
def nps(
    from_: Annotated[
        str | None, typer.Option("--from", help="First day (YYYY-MM-DD, UTC).")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last day, included.")] = None,
    survey: Annotated[str | None, typer.Option(help="Only this survey.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Net Promoter Score: promoters, passives, detractors and the NPS."""
    from advocado.services.nps import day_bounds, nps_figures

    start, end = day_bounds(_day(from_, "--from"), _day(to, "--to"))
    with read_only(default_engine()) as session:
        figures = nps_figures(session, start=start, end=end, survey=survey)
    if as_json:
        print(json.dumps(figures.as_dict()))
        return
    score = "n/a (no responses)" if figures.nps is None else f"{figures.nps:.1f}"
    out.print(f"NPS {score}")
    out.print(f"promoters  {figures.promoters:>9}")
    out.print(f"passives   {figures.passives:>9}")
    out.print(f"detractors {figures.detractors:>9}")
    out.print(f"responses  {figures.responses:>9}")


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key, e.g. 'shop webhook'.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: read, write.")] = "read",
) -> None:
    """Create a key; the secret is printed once, alone on the last line."""
    from advocado.services.apikeys import create_api_key

    try:
        with unit_of_work(default_engine()) as session:
            key, secret = create_api_key(session, name=name, scopes=scopes.split(","))
    except ValueError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    err.print(f"API key {key.prefix} ({name}, scopes: {', '.join(key.scopes)}). "
              "Store it now: only its hash is kept.")  # fmt: skip
    print(secret)


@apikey_app.command("list")
def apikey_list() -> None:
    """List keys (prefix, name, scopes, created, last used, revoked)."""
    from advocado.services.apikeys import list_api_keys

    with read_only(default_engine()) as session:
        keys = list_api_keys(session)
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        print(f"{key.prefix}\t{key.name}\t{','.join(key.scopes)}\t"
              f"created {key.created_at:%Y-%m-%d}\tlast used {used}\t{state}")  # fmt: skip


@apikey_app.command("revoke")
def apikey_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (see list).")],
) -> None:
    """Revoke a key at once; requests with it get 401 from then on."""
    from advocado.services.apikeys import revoke_api_key

    try:
        with unit_of_work(default_engine()) as session:
            revoke_api_key(session, prefix=prefix)
    except LookupError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    out.print(f"revoked {prefix}")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Login email.")],
    password: Annotated[str, typer.Option(help="At least 8 characters.")],
    role: Annotated[str, typer.Option(help="admin (more roles come with the console).")] = "admin",
) -> None:
    """Create a console user (password stored as an argon2 hash)."""
    from advocado.services.users import create_user

    try:
        with unit_of_work(default_engine()) as session:
            create_user(session, email=email, password=password, role=role, actor="cli")
    except ValueError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    out.print(f"user {email} created ({role})")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the API (/api/v1, docs at /docs) and the console (/) with granian."""
    from advocado.web.server import run_server

    default_engine()  # migrate before the workers start
    out.print(f"Advocado on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    run_server(host=host, port=port, workers=workers)


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="How many customers to make.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
) -> None:
    """Fill an empty database with a believable demo brand, and print how to log in."""
    from advocado.services.demo import DatabaseNotEmpty, load_demo

    try:
        summary = load_demo(default_engine(), customers=customers, seed=seed)
    except DatabaseNotEmpty as error:
        err.print(f"[yellow]{error}[/yellow]")
        raise typer.Exit(0) from None
    out.print(summary.describe())


from advocado.cli_referral import ledger_app, referral_app  # noqa: E402

app.add_typer(referral_app, name="referral")
app.add_typer(ledger_app, name="ledger")

from advocado.cli_playbook import playbook_app, worker  # noqa: E402

app.add_typer(playbook_app, name="playbook")
app.command("worker")(worker)
from advocado.cli_messages import messages_app  # noqa: E402

app.add_typer(messages_app, name="messages")
from advocado.cli_ugc import challenge_app, task_app  # noqa: E402

app.add_typer(challenge_app, name="challenge")
app.add_typer(task_app, name="task")

from advocado.cli_plan import plan_app  # noqa: E402

app.add_typer(plan_app, name="plan")

from advocado.cli_dashboard import dashboard_app  # noqa: E402

app.add_typer(dashboard_app, name="dashboard")

from advocado.cli_report import report_app  # noqa: E402

app.add_typer(report_app, name="report")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
