"""referrals ops: counters, gift shipments, order refunds

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 21:44:07.636895
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "order_refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("order_external_id", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_refunds")),
        sa.UniqueConstraint("event_id", name=op.f("uq_order_refunds_event_id")),
    )
    with op.batch_alter_table("order_refunds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_refunds_order_external_id"), ["order_external_id"], unique=False
        )

    op.create_table(
        "referral_counters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_referral_counters_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_counters")),
        sa.UniqueConstraint("program_id", "scope", name=op.f("uq_referral_counters_program_id")),
    )
    op.create_table(
        "gift_shipments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reward_id", sa.Integer(), nullable=False),
        sa.Column("tracking", sa.Text(), nullable=False),
        sa.Column("shipped_by", sa.String(length=200), nullable=True),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_gift_shipments_reward_id_rewards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_shipments")),
        sa.UniqueConstraint("reward_id", name=op.f("uq_gift_shipments_reward_id")),
    )


def downgrade() -> None:

    op.drop_table("gift_shipments")
    op.drop_table("referral_counters")
    with op.batch_alter_table("order_refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_refunds_order_external_id"))

    op.drop_table("order_refunds")
