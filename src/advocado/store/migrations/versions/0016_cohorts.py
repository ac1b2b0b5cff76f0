"""cohorts: segment members and program people kept as rows (cohort_members), customers to
judge again (cohort_dirty), response and promoter counts per cohort (filled by the upgrade)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cohort_members",
        sa.Column("cohort", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("cohort", "customer_id", name=op.f("pk_cohort_members")),
    )
    op.create_index(
        op.f("ix_cohort_members_customer_id"), "cohort_members", ["customer_id"], unique=False
    )
    op.create_table(
        "cohort_dirty",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("marks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_cohort_dirty")),
    )
    op.create_table(
        "cohort_response_day_counts",
        sa.Column("cohort", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("survey", sa.String(length=200), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("responses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "cohort", "day", "survey", "score", name=op.f("pk_cohort_response_day_counts")
        ),
    )
    op.create_table(
        "cohort_promoter_day_counts",
        sa.Column("cohort", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("persona", sa.String(length=12), nullable=False),
        sa.Column("value_tier", sa.String(length=8), nullable=False),
        sa.Column("high_influence", sa.Boolean(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "cohort",
            "day",
            "persona",
            "value_tier",
            "high_influence",
            name=op.f("pk_cohort_promoter_day_counts"),
        ),  # fmt: skip
    )
    # An existing database gets its cohorts now, from its rows (segments, codes, referrals,
    # responses, the latest responses and insights: all older than this revision).
    from sqlalchemy.orm import Session

    from advocado.services import cohorts

    cohorts.rebuild(Session(bind=op.get_bind()), orders=False)  # 0019 adds and fills those


def downgrade() -> None:
    op.drop_table("cohort_promoter_day_counts")
    op.drop_table("cohort_response_day_counts")
    op.drop_table("cohort_dirty")
    op.drop_index(op.f("ix_cohort_members_customer_id"), table_name="cohort_members")
    op.drop_table("cohort_members")
