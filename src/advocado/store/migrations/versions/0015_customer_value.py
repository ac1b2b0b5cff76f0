"""dashboard clv pre-aggregates: each customer's value groups (advocates, a program's people
and advocates), the groups' paid orders per day, and per member and day; each customer's
revenue of all time (filled from the rows by the upgrade itself)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "value_groups",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_value_groups_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("program_id", "role", "customer_id", name=op.f("pk_value_groups")),
    )
    op.create_index(op.f("ix_value_groups_customer_id"), "value_groups", ["customer_id"])
    op.create_table(
        "value_group_days",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("previous_day", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "role", "currency", "day", "previous_day",
            name=op.f("pk_value_group_days"),
        ),
        sqlite_with_rowid=False,
    )  # fmt: skip
    op.create_table(
        "value_group_buyer_days",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "role", "currency", "customer_id", "day",
            name=op.f("pk_value_group_buyer_days"),
        ),
        sqlite_with_rowid=False,
    )  # fmt: skip
    op.create_index(
        "ix_value_group_buyer_days_customer_id", "value_group_buyer_days", ["customer_id"]
    )
    op.create_table(
        "customer_revenues",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"],
            name=op.f("fk_customer_revenues_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("customer_id", "currency", name=op.f("pk_customer_revenues")),
    )  # fmt: skip
    op.create_index(
        "ix_customer_revenues_top", "customer_revenues", ["currency", "revenue", "customer_id"]
    )
    # The clv figure's window of paid_order_days, from the index alone (SQLite: no row look-up).
    op.create_index(
        "ix_paid_order_days_window",
        "paid_order_days",
        ["currency", "day", "previous_day", "orders", "revenue"],
    )
    # An existing database gets them now, from its referrals, codes and orders (the rebuild
    # reads only those and the two new tables).
    from sqlalchemy.orm import Session

    from advocado.services import customer_value

    customer_value.rebuild(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_index("ix_customer_revenues_top", table_name="customer_revenues")
    op.drop_table("customer_revenues")
    op.drop_index("ix_paid_order_days_window", table_name="paid_order_days")
    op.drop_index("ix_value_group_buyer_days_customer_id", table_name="value_group_buyer_days")
    op.drop_table("value_group_buyer_days")
    op.drop_table("value_group_days")
    op.drop_index(op.f("ix_value_groups_customer_id"), table_name="value_groups")
    op.drop_table("value_groups")
