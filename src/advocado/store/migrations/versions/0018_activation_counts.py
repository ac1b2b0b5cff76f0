"""activation_counts: the activation, playbook-step, review and UGC figures per day

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 04:15:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activation_counts",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("program", sa.Integer(), primary_key=True),  # 0: everyone
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("a", sa.String(200), primary_key=True),
        sa.Column("b", sa.String(200), primary_key=True),
        sa.Column("c", sa.String(200), primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    # Filled from the rows (reads only old tables, writes only the new one).
    from advocado.services import activation_aggregates

    activation_aggregates.rebuild(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_table("activation_counts")
