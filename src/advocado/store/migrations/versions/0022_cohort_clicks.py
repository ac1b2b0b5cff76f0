"""clicks per segment cohort: click_day_counts summed per day over the codes whose holder is
a segment's stored member (filled from click_day_counts and the stored members by the upgrade
itself)

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-26 07:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cohort_click_day_counts",
        sa.Column("cohort", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("human_clicks", sa.Integer(), nullable=False),
        sa.Column("new_visitors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("cohort", "day", name=op.f("pk_cohort_click_day_counts")),
    )
    # Filled from click_day_counts, referral_codes and cohort_members (only this new table and
    # old columns are read or written).
    from advocado.services import click_rollup

    session = Session(bind=op.get_bind())
    click_rollup.recount_cohorts(session, None)
    session.flush()


def downgrade() -> None:
    op.drop_table("cohort_click_day_counts")
