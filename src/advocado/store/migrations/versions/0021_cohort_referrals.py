"""referral figures per segment cohort: referrals per day, referred revenue per day, rewards
cost per day of the referrals whose advocate is a segment's member (filled from the rows and
the stored members by the upgrade itself)

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-26 05:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cohort_referral_day_counts",
        sa.Column("cohort", sa.String(length=40), nullable=False),
        sa.Column("basis", sa.String(length=10), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("qualified", sa.Boolean(), nullable=False),
        sa.Column("referrals", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "cohort", "basis", "day", "status", "reason", "qualified",
            name=op.f("pk_cohort_referral_day_counts"),
        ),
    )  # fmt: skip
    op.create_table(
        "cohort_referred_revenue_days",
        sa.Column("cohort", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "cohort", "day", "currency", name=op.f("pk_cohort_referred_revenue_days")
        ),
    )
    op.create_table(
        "cohort_reward_cost_days",
        sa.Column("cohort", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("rewards", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "cohort", "day", "currency", "kind", name=op.f("pk_cohort_reward_cost_days")
        ),
    )
    # Filled from the rows and cohort_members (stored members; only these new tables and old
    # columns are read or written).
    from advocado.services import cohort_referrals

    session = Session(bind=op.get_bind())
    cohort_referrals.recompute(session, None)
    session.flush()


def downgrade() -> None:
    op.drop_table("cohort_reward_cost_days")
    op.drop_table("cohort_referred_revenue_days")
    op.drop_table("cohort_referral_day_counts")
