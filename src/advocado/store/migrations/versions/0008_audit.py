"""audit log of console, API and CLI changes; an index for the dashboard's click figures

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 21:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=400), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    op.create_index(op.f("ix_audit_entries_at"), "audit_entries", ["at"], unique=False)
    op.create_index(
        "ix_audit_entries_entity", "audit_entries", ["entity", "entity_id"], unique=False
    )
    op.create_index(
        "ix_clicks_dashboard", "clicks", ["clicked_at", "is_bot", "fingerprint"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_clicks_dashboard", table_name="clicks")
    op.drop_index("ix_audit_entries_entity", table_name="audit_entries")
    op.drop_index(op.f("ix_audit_entries_at"), table_name="audit_entries")
    op.drop_table("audit_entries")
