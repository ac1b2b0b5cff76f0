"""activation_counts per segment: each saved segment's members counted under program -<id>

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26 05:00:00
"""

from alembic import op
from sqlalchemy.orm import Session

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No new table: the segments' rows (program < 0) are filled from cohort_members and the
    # counted rows (reads only old tables, writes only activation_counts).
    from advocado.services import activation_aggregates

    activation_aggregates.recount_segment(Session(bind=op.get_bind()), None)


def downgrade() -> None:
    op.execute("DELETE FROM activation_counts WHERE program < 0")
