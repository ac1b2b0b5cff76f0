"""dashboard pre-aggregates, referral side: referrals per day, referred revenue per day,
rewards cost per day, per-advocate counts, referred revenue and firsts (filled from the rows by the
upgrade itself)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_day_counts",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(length=10), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("qualified", sa.Boolean(), nullable=False),
        sa.Column("referrals", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "basis", "day", "status", "reason", "qualified",
            name=op.f("pk_referral_day_counts"),
        ),
    )  # fmt: skip
    op.create_table(
        "referred_revenue_days",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "day", "currency", name=op.f("pk_referred_revenue_days")
        ),
    )
    op.create_table(
        "reward_cost_days",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("rewards", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "day", "currency", "kind", name=op.f("pk_reward_cost_days")
        ),
    )
    op.create_table(
        "advocate_referral_counts",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("advocate_id", sa.Integer(), nullable=False),
        sa.Column("signups", sa.Integer(), nullable=False),
        sa.Column("qualified", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "advocate_id", name=op.f("pk_advocate_referral_counts")
        ),
    )
    op.create_index(
        "ix_advocate_referral_counts_rank",
        "advocate_referral_counts",
        ["program_id", "qualified", "signups"],
    )
    op.create_table(
        "advocate_referred_revenue",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("advocate_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "advocate_id", "currency", name=op.f("pk_advocate_referred_revenue")
        ),
    )
    op.create_table(
        "advocate_firsts",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("advocate_id", sa.Integer(), nullable=False),
        sa.Column("code_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gap_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("program_id", "advocate_id", name=op.f("pk_advocate_firsts")),
    )
    op.create_index("ix_advocate_firsts_code", "advocate_firsts", ["program_id", "code_at"])
    op.create_index(
        "ix_advocate_firsts_first", "advocate_firsts", ["program_id", "first_at", "gap_us"]
    )
    op.create_index("ix_advocate_firsts_gap", "advocate_firsts", ["program_id", "gap_us"])
    # An existing database gets its aggregates now, from its rows (the rebuild reads only
    # referrals, orders and rewards, and writes only these tables).
    from sqlalchemy.orm import Session

    from advocado.services import referral_aggregates

    referral_aggregates.rebuild(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_index("ix_advocate_firsts_gap", table_name="advocate_firsts")
    op.drop_index("ix_advocate_firsts_first", table_name="advocate_firsts")
    op.drop_index("ix_advocate_firsts_code", table_name="advocate_firsts")
    op.drop_table("advocate_firsts")
    op.drop_table("advocate_referred_revenue")
    op.drop_index("ix_advocate_referral_counts_rank", table_name="advocate_referral_counts")
    op.drop_table("advocate_referral_counts")
    op.drop_table("reward_cost_days")
    op.drop_table("referred_revenue_days")
    op.drop_table("referral_day_counts")
