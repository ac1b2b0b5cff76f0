"""cohort paid order days: paid_order_days per segment and program cohort (the clv figure
under a segment costs days), filled by the upgrade from the stored members and orders

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cohort_paid_order_days",
        sa.Column("cohort", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("previous_day", sa.Date(), nullable=False),
        sa.Column("advocate", sa.Boolean(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "cohort",
            "currency",
            "day",
            "previous_day",
            "advocate",
            name=op.f("pk_cohort_paid_order_days"),
        ),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_cohort_paid_order_days_window",
        "cohort_paid_order_days",
        ["cohort", "currency", "day", "previous_day", "advocate"],
        unique=False,
        postgresql_include=["orders", "revenue"],
    )
    # An existing database gets its counts now, from its stored cohort members (0016), value
    # groups (0015) and orders: only this revision's table and older ones are read or written.
    from sqlalchemy.orm import Session

    from advocado.services import cohorts

    cohorts.count_orders_from_members(Session(bind=op.get_bind()), None)


def downgrade() -> None:
    op.drop_index("ix_cohort_paid_order_days_window", table_name="cohort_paid_order_days")
    op.drop_table("cohort_paid_order_days")
