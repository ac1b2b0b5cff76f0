"""`advocado plan …`: program plans from YAML files, and plan vs actual."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from advocado.store.db import default_engine, read_only, unit_of_work

plan_app = typer.Typer(help="Program plans (goals, personas, recruitment) and plan vs actual.",
                       no_args_is_help=True)  # fmt: skip
err = Console(stderr=True, soft_wrap=True)


@plan_app.command("apply")
def plan_apply(file: Path) -> None:
    """Create or update a plan from a YAML (or JSON) file; prints its slug. A problem is
    reported with the field and the file's line, and nothing is written."""
    from advocado.domain.plans import PlanError
    from advocado.services import audit
    from advocado.services.plans import apply_plan, read_plan_file

    try:
        data = read_plan_file(file)
        with unit_of_work(default_engine()) as session:
            applied = apply_plan(session, data=data, actor=audit.CLI)
    except PlanError as error:
        err.print(f"{error.field}: {error.reason}", style="red", markup=False)
        raise typer.Exit(2) from None
    state = "created" if applied.created else ("updated" if applied.changed else "unchanged")
    err.print(f"plan {state}", markup=False)
    print(applied.slug)


@plan_app.command("show")
def plan_show(slug: str) -> None:
    """The plan with each goal's target, actual, percent done and time elapsed (JSON)."""
    from advocado.services.plans import UnknownPlan, plan_by_slug, plan_view

    try:
        with read_only(default_engine()) as session:
            found = plan_view(session, plan=plan_by_slug(session, slug))
    except UnknownPlan as error:
        err.print(str(error), style="red", markup=False)
        raise typer.Exit(1) from None
    print(json.dumps(found, ensure_ascii=False, indent=2))


@plan_app.command("list")
def plan_list() -> None:
    """Every plan: slug, dates, owner, name."""
    from advocado.services.plans import list_plans

    with read_only(default_engine()) as session:
        for plan in list_plans(session):
            print(f"{plan.slug}\t{plan.starts_on}\t{plan.ends_on}\t{plan.owner}\t{plan.name}")
