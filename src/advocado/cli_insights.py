"""`advocado insights …`: value tiers, lifecycle stages and influence of customers.
(`advocado import social` lives with the other imports in advocado.cli.)"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from advocado.store.db import default_engine, read_only, unit_of_work

insights_app = typer.Typer(
    help="Customer insights: value tier, lifecycle stage, influence.", no_args_is_help=True
)
err = Console(stderr=True)
out = Console()

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (default: $ADVOCADO_INSIGHTS_FILE)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@insights_app.command("recompute")
def recompute(config: ConfigOption = None, json_: JsonOption = False) -> None:
    """Recompute every customer's value tier, lifecycle stage and influence (idempotent)."""
    from advocado.services.insights import load_rules, recompute_insights

    try:
        rules = load_rules(config)
    except ValueError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    started = time.perf_counter()
    with unit_of_work(default_engine()) as session:
        summary = recompute_insights(session, rules=rules)
    seconds = time.perf_counter() - started
    if json_:
        print(json.dumps({**summary.as_dict(), "seconds": round(seconds, 3)}))
        return
    out.print(f"{summary.customers} customers in {seconds:.1f} s")
    out.print("value tiers      " + ", ".join(f"{k} {v}" for k, v in summary.value_tiers.items()))
    stages = summary.lifecycle_stages
    out.print("lifecycle stages " + ", ".join(f"{k} {v}" for k, v in stages.items()))
    out.print(f"high influence   {summary.high_influence}")


@insights_app.command("show")
def show(
    customer: Annotated[str, typer.Argument(help="The customer's external id.")],
    json_: JsonOption = False,
) -> None:
    """One customer's labels and the numbers behind them."""
    from advocado.services.insights import customer_insight

    with read_only(default_engine()) as session:
        found = customer_insight(session, external_id=customer)
    if found is None:
        err.print(f"[red]no customer {customer!r}[/red]")
        raise typer.Exit(2)
    if json_:
        print(json.dumps(found, default=str, ensure_ascii=False))
        return
    if not found["computed"]:
        print(f"{customer}: not computed yet (run `advocado insights recompute`)")
        return
    print(f"{customer}: value {found['value_tier'] or '-'}, "
          f"lifecycle {found['lifecycle_stage'] or '-'}, "
          f"influence {found['influence_score'] if found['influence_score'] is not None else '-'}"
          f"{' (HIGH)' if found['high_influence'] else ''}")  # fmt: skip
    print(f"  value:     {found['value_explanation']}")
    if found["influence_explanation"]:
        print(f"  influence: {found['influence_explanation']}")
