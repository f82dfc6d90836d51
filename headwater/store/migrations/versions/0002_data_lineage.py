"""data lineage

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:41:07.964882
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_lineage",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pipeline_name", sa.String(length=200), nullable=False),
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column("source_dataset", sa.Text(), nullable=False),
        sa.Column("source_table", sa.String(length=400), nullable=False),
        sa.Column("source_column", sa.String(length=200), nullable=False),
        sa.Column("target_dataset", sa.Text(), nullable=False),
        sa.Column("target_table", sa.String(length=400), nullable=False),
        sa.Column("target_column", sa.String(length=200), nullable=False),
        sa.Column("transformation_type", sa.String(length=20), nullable=False),
        sa.Column("transformations", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("data_lineage", schema=None) as batch_op:
        batch_op.create_index("ix_data_lineage_pipeline", ["pipeline_name"], unique=False)
        batch_op.create_index("ix_data_lineage_source", ["source_table", "source_column"], unique=False)
        batch_op.create_index("ix_data_lineage_target", ["target_table", "target_column"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("data_lineage", schema=None) as batch_op:
        batch_op.drop_index("ix_data_lineage_target")
        batch_op.drop_index("ix_data_lineage_source")
        batch_op.drop_index("ix_data_lineage_pipeline")

    op.drop_table("data_lineage")
