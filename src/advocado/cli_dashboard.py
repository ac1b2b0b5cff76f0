"""`advocado dashboard …`: keeping the dashboard's pre-aggregates: the customer side
(services.customer_aggregates) and the click side (services.click_rollup)."""

from __future__ import annotations

import typer

from advocado.store.db import default_engine, unit_of_work

dashboard_app = typer.Typer(help="The dashboard's pre-aggregates (roll-up, rebuild).",
                            no_args_is_help=True)  # fmt: skip


def rebuild_customer_side() -> dict[str, int]:
    """Every customer-side aggregate (services.aggregates), recomputed from the rows."""
    from advocado.services import aggregates

    with unit_of_work(default_engine()) as session:
        return aggregates.rebuild(session)


@dashboard_app.command("rollup")
def dashboard_rollup() -> None:
    """Fold the clicks that arrived since the last roll-up into the aggregates (the worker
    does this every tick; figures are exact without it, only slower to read)."""
    from advocado.services.click_rollup import catch_up

    done = catch_up(default_engine())
    print(f"rolled up {done.clicks} clicks (ids {done.low + 1}..{done.high})")


@dashboard_app.command("rebuild")
def dashboard_rebuild() -> None:
    """Recompute the dashboard's aggregates from the rows, in one transaction each (they are
    kept current as data arrives; this is for repair, or after a bulk load behind our back).
    The click side holds new clicks back on PostgreSQL while it runs: the redirect keeps
    answering and queues them."""
    from advocado.services.click_rollup import rebuild

    found = rebuild_customer_side()
    print(", ".join(f"{table}: {rows} rows" for table, rows in found.items()))
    done = rebuild(default_engine())
    print(f"clicks: rebuilt from {done.clicks} clicks (up to id {done.high})")
