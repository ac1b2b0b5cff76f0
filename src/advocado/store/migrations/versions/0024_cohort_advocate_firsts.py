"""advocate_firsts per segment cohort: the any-program rows of each segment's stored members
(K-factor advocates and time to first referral under a segment; filled from advocate_firsts
and cohort_members by the upgrade itself)

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-26 08:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cohort_advocate_firsts",
        sa.Column("cohort", sa.String(length=40), nullable=False),
        sa.Column("advocate_id", sa.Integer(), nullable=False),
        sa.Column("code_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gap_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("cohort", "advocate_id", name=op.f("pk_cohort_advocate_firsts")),
    )
    op.create_index(
        "ix_cohort_advocate_firsts_code", "cohort_advocate_firsts", ["cohort", "code_at"]
    )
    op.create_index(
        "ix_cohort_advocate_firsts_first",
        "cohort_advocate_firsts",
        ["cohort", "first_at", "gap_us"],
    )
    op.create_index("ix_cohort_advocate_firsts_gap", "cohort_advocate_firsts", ["cohort", "gap_us"])
    # Filled from advocate_firsts and cohort_members (only this new table is written).
    from advocado.services import cohort_firsts

    session = Session(bind=op.get_bind())
    cohort_firsts.recompute(session, None)
    session.flush()


def downgrade() -> None:
    op.drop_index("ix_cohort_advocate_firsts_gap", table_name="cohort_advocate_firsts")
    op.drop_index("ix_cohort_advocate_firsts_first", table_name="cohort_advocate_firsts")
    op.drop_index("ix_cohort_advocate_firsts_code", table_name="cohort_advocate_firsts")
    op.drop_table("cohort_advocate_firsts")
