"""voc: comment analysis, social profiles, insights, lexicon, segments

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 08:37:37.518413
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lexicon_terms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(length=100), nullable=False),
        sa.Column("persona", sa.String(length=12), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lexicon_terms")),
        sa.UniqueConstraint("term", "persona", name=op.f("uq_lexicon_terms_term")),
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("slug", name=op.f("uq_segments_slug")),
    )
    op.create_table(
        "customer_insights",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("recency_days", sa.Integer(), nullable=True),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("monetary", sa.BigInteger(), nullable=False),
        sa.Column("value_tier", sa.String(length=8), nullable=True),
        sa.Column("lifecycle_stage", sa.String(length=12), nullable=True),
        sa.Column("value_explanation", sa.Text(), nullable=True),
        sa.Column("influence_score", sa.Float(), nullable=True),
        sa.Column("high_influence", sa.Boolean(), nullable=False),
        sa.Column("influence_explanation", sa.Text(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_insights_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_insights")),
    )
    with op.batch_alter_table("customer_insights", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_insights_high_influence"), ["high_influence"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_customer_insights_lifecycle_stage"), ["lifecycle_stage"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_customer_insights_value_tier"), ["value_tier"], unique=False
        )

    op.create_table(
        "social_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=40), nullable=False),
        sa.Column("handle", sa.String(length=200), nullable=False),
        sa.Column("followers", sa.BigInteger(), nullable=False),
        sa.Column("engagement_rate", sa.Float(), nullable=False),
        sa.Column("brand_mentions", sa.Integer(), nullable=False),
        sa.Column("vertical", sa.String(length=100), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_social_profiles_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_profiles")),
        sa.UniqueConstraint("customer_id", "platform", name=op.f("uq_social_profiles_customer_id")),
    )
    with op.batch_alter_table("social_profiles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_social_profiles_customer_id"), ["customer_id"], unique=False
        )

    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("sentiment", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("persona", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("persona_confidence", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("evidence", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("analyzed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_responses_persona"), ["persona"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_responses_persona"))
        batch_op.drop_column("analyzed_at")
        batch_op.drop_column("evidence")
        batch_op.drop_column("persona_confidence")
        batch_op.drop_column("persona")
        batch_op.drop_column("sentiment")
        batch_op.drop_column("language")

    with op.batch_alter_table("social_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_social_profiles_customer_id"))

    op.drop_table("social_profiles")
    with op.batch_alter_table("customer_insights", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_insights_value_tier"))
        batch_op.drop_index(batch_op.f("ix_customer_insights_lifecycle_stage"))
        batch_op.drop_index(batch_op.f("ix_customer_insights_high_influence"))

    op.drop_table("customer_insights")
    op.drop_table("segments")
    op.drop_table("lexicon_terms")
