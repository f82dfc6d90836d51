"""data quality

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 10:17:53.881889
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_quality_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pipeline_name", sa.String(length=200), nullable=False),
        sa.Column("suite", sa.String(length=200), nullable=False),
        sa.Column("rule_name", sa.String(length=200), nullable=False),
        sa.Column("expectation_type", sa.String(length=200), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("kwargs", sa.JSON(), nullable=False),
        sa.Column("dimension", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pipeline_name", "suite", "rule_name", name="uq_data_quality_rules_rule"),
    )
    op.create_table(
        "data_quality_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_name", sa.String(length=200), nullable=False),
        sa.Column("step_name", sa.String(length=200), nullable=False),
        sa.Column("suite", sa.String(length=200), nullable=False),
        sa.Column("table_name", sa.String(length=400), nullable=False),
        sa.Column("rule_name", sa.String(length=200), nullable=False),
        sa.Column("expectation_type", sa.String(length=200), nullable=False),
        sa.Column("dimension", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("records_checked", sa.BigInteger(), nullable=False),
        sa.Column("records_passed", sa.BigInteger(), nullable=False),
        sa.Column("records_failed", sa.BigInteger(), nullable=False),
        sa.Column("pass_rate", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("observed_value", sa.JSON(), nullable=True),
        sa.Column("sample_failures", sa.JSON(), nullable=False),
        sa.Column("remediation", sa.Text(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["execution_id"], ["pipeline_executions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("data_quality_checks", schema=None) as batch_op:
        batch_op.create_index("ix_data_quality_checks_execution", ["execution_id"], unique=False)
        batch_op.create_index(
            "ix_data_quality_checks_pipeline_rule", ["pipeline_name", "rule_name", "checked_at"], unique=False
        )

    with op.batch_alter_table("pipeline_executions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("records_quarantined", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("quality_score", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_executions", schema=None) as batch_op:
        batch_op.drop_column("quality_score")
        batch_op.drop_column("records_quarantined")

    with op.batch_alter_table("data_quality_checks", schema=None) as batch_op:
        batch_op.drop_index("ix_data_quality_checks_pipeline_rule")
        batch_op.drop_index("ix_data_quality_checks_execution")

    op.drop_table("data_quality_checks")
    op.drop_table("data_quality_rules")
