"""click aggregates for the dashboard (per day and code, first visit per code and visitor)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "click_day_counts",
        sa.Column("code_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("human_clicks", sa.Integer(), nullable=False),
        sa.Column("new_visitors", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["referral_codes.id"],
            name=op.f("fk_click_day_counts_code_id_referral_codes"),
        ),
        sa.PrimaryKeyConstraint("code_id", "day", name=op.f("pk_click_day_counts")),
    )
    op.create_table(
        "click_program_days",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("human_clicks", sa.Integer(), nullable=False),
        sa.Column("new_visitors", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_click_program_days_program_id_programs"),
        ),
        sa.PrimaryKeyConstraint("program_id", "day", name=op.f("pk_click_program_days")),
    )
    op.create_table(
        "click_visitors",
        sa.Column("code_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_click_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["referral_codes.id"],
            name=op.f("fk_click_visitors_code_id_referral_codes"),
        ),
        sa.PrimaryKeyConstraint("code_id", "fingerprint", name=op.f("pk_click_visitors")),
    )
    op.create_index("ix_click_visitors_first_at", "click_visitors", ["first_at"])
    op.create_table(
        "rollup_watermarks",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("rolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rollup_watermarks")),
    )


def downgrade() -> None:
    op.drop_table("rollup_watermarks")
    op.drop_index("ix_click_visitors_first_at", table_name="click_visitors")
    op.drop_table("click_visitors")
    op.drop_table("click_program_days")
    op.drop_table("click_day_counts")
