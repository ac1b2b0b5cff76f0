"""enrolment_steps in time order (ran_at, id): the playbook-steps drill-down walks it and
stops after a page, whatever the step

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-26 07:00:00
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_enrolment_steps_ran_at", "enrolment_steps", ["ran_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_enrolment_steps_ran_at", table_name="enrolment_steps")
