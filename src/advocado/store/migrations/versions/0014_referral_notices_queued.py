"""referral notices: queued_at, so a delivery run reads only the notices not yet queued

Revision ID: 0014
Revises: 0009
Create Date: 2026-11-26 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "referral_notices", sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_referral_notices_pending", "referral_notices", ["queued_at", "id"], unique=False
    )
    # Notices already made into messages (cause_key referral_notice:{id}) are queued: mark
    # them with their message's time, so the first run after the upgrade skips them.
    op.execute(
        """
        UPDATE referral_notices SET queued_at = (
            SELECT messages.created_at FROM messages
            WHERE messages.cause_key = 'referral_notice:' || CAST(referral_notices.id AS TEXT)
        )
        WHERE EXISTS (
            SELECT 1 FROM messages
            WHERE messages.cause_key = 'referral_notice:' || CAST(referral_notices.id AS TEXT)
        )
        """
    )


def downgrade() -> None:
    op.drop_index("ix_referral_notices_pending", table_name="referral_notices")
    with op.batch_alter_table("referral_notices") as batch:
        batch.drop_column("queued_at")
