"""`advocado dashboard …`: keeping the dashboard's pre-aggregates (services.customer_aggregates;
the click side adds its own to the same `rebuild`)."""

from __future__ import annotations

import typer

from advocado.store.db import default_engine, unit_of_work

dashboard_app = typer.Typer(help="The dashboard's pre-aggregates (rebuild).",
                            no_args_is_help=True)  # fmt: skip


def rebuild_customer_side() -> dict[str, int]:
    """Latest response per customer and promoter counts, recomputed from the rows."""
    from advocado.services import customer_aggregates

    with unit_of_work(default_engine()) as session:
        return customer_aggregates.rebuild(session)


@dashboard_app.command("rebuild")
def dashboard_rebuild() -> None:
    """Recompute the dashboard's aggregates from the rows, in one transaction each (they are
    kept current as data arrives; this is for repair, or after a bulk load behind our back)."""
    found = rebuild_customer_side()
    print(", ".join(f"{table}: {rows} rows" for table, rows in found.items()))
