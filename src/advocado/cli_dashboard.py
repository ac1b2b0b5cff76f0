"""`advocado dashboard …`: keeping the dashboard's click aggregates (services.click_rollup)."""

from __future__ import annotations

import typer

from advocado.store.db import default_engine

dashboard_app = typer.Typer(help="The dashboard's click aggregates (roll-up, rebuild).",
                            no_args_is_help=True)  # fmt: skip


@dashboard_app.command("rollup")
def dashboard_rollup() -> None:
    """Fold the clicks that arrived since the last roll-up into the aggregates (the worker
    does this every tick; figures are exact without it, only slower to read)."""
    from advocado.services.click_rollup import catch_up

    done = catch_up(default_engine())
    print(f"rolled up {done.clicks} clicks (ids {done.low + 1}..{done.high})")


@dashboard_app.command("rebuild")
def dashboard_rebuild() -> None:
    """Recompute the click aggregates from every click, in one transaction (holds new clicks
    back on PostgreSQL while it runs: the redirect keeps answering and queues them)."""
    from advocado.services.click_rollup import rebuild

    done = rebuild(default_engine())
    print(f"rebuilt from {done.clicks} clicks (up to id {done.high})")
