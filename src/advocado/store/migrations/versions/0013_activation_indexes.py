"""indexes of the activation, reviews and UGC dashboard panels

Revision ID: 0013
Revises: 0009
Create Date: 2026-11-26 01:00:00
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The funnel's cohort: a level's steps that ran in the period, with what they did and made
    # (outcome, effect), so counting them reads the index, not the rows.
    op.create_index(
        "ix_enrolment_steps_step_ran",
        "enrolment_steps",
        ["step", "ran_at", "outcome", "effect", "enrolment_id"],
    )
    # The steps panel: the period's steps per step and outcome, counted from the index alone
    # (already in group order; the period is a range inside each step and outcome).
    op.create_index(
        "ix_enrolment_steps_ran", "enrolment_steps", ["step", "outcome", "ran_at", "enrolment_id"]
    )
    # The review asks (a template) made in the period.
    op.create_index("ix_messages_template_created", "messages", ["template", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_template_created", table_name="messages")
    op.drop_index("ix_enrolment_steps_ran", table_name="enrolment_steps")
    op.drop_index("ix_enrolment_steps_step_ran", table_name="enrolment_steps")
