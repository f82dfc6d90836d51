"""circuit breakers and last good extracts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 23:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "circuit_breakers",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("failure_times", sa.JSON(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("open_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("probe_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("policy", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "last_good_extracts",
        sa.Column("pipeline_name", sa.String(length=200), nullable=False),
        sa.Column("step_name", sa.String(length=200), nullable=False),
        sa.Column("source_name", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("extracted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("pipeline_name", "step_name"),
    )
    with op.batch_alter_table("pipeline_executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data_age_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("stale_data", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_executions", schema=None) as batch_op:
        batch_op.drop_column("stale_data")
        batch_op.drop_column("data_age_seconds")
    op.drop_table("last_good_extracts")
    op.drop_table("circuit_breakers")
