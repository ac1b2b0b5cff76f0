"""dashboard pre-aggregates, response/customer side: latest response per customer, promoter
counts per day, paid orders per day (filled from the rows by the upgrade itself)

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-26 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


INDEXES = (
    ("ix_referrals_dashboard_signed_up", "referrals",
     ["signed_up_at", "status", "program_id", "advocate_id", "qualified_at"]),
    ("ix_referrals_dashboard_qualified", "referrals",
     ["qualified_at", "status", "program_id", "advocate_id"]),
    ("ix_referrals_dashboard_advocate", "referrals",
     ["advocate_id", "status", "program_id", "signed_up_at", "qualified_at", "referee_id"]),
    ("ix_orders_dashboard_customer", "orders",
     ["customer_id", "status", "currency", "placed_at", "amount"]),
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "customer_latest_responses",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("persona", sa.String(length=12), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_latest_responses_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["responses.id"],
            name=op.f("fk_customer_latest_responses_response_id_responses"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_latest_responses")),
        sa.UniqueConstraint("response_id", name=op.f("uq_customer_latest_responses_response_id")),
    )
    op.create_index(
        "ix_customer_latest_responses_score",
        "customer_latest_responses",
        ["score", "submitted_at"],
    )
    op.create_index(
        op.f("ix_customer_latest_responses_submitted_at"),
        "customer_latest_responses",
        ["submitted_at"],
    )
    op.create_table(
        "promoter_day_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("persona", sa.String(length=12), nullable=False),
        sa.Column("value_tier", sa.String(length=8), nullable=False),
        sa.Column("high_influence", sa.Boolean(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "persona", "value_tier", "high_influence", name=op.f("pk_promoter_day_counts")
        ),
    )
    op.create_table(
        "paid_order_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("previous_day", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "currency", "previous_day", name=op.f("pk_paid_order_days")),
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    # An existing database gets its aggregates now, from its rows.
    from sqlalchemy.orm import Session

    from advocado.services import customer_aggregates

    customer_aggregates.rebuild(Session(bind=op.get_bind()))


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("paid_order_days")
    op.drop_table("promoter_day_counts")
    op.drop_index(
        op.f("ix_customer_latest_responses_submitted_at"), table_name="customer_latest_responses"
    )
    op.drop_index("ix_customer_latest_responses_score", table_name="customer_latest_responses")
    op.drop_table("customer_latest_responses")
