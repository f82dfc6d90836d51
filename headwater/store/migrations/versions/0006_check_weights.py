"""quality checks keep the weight they had in the run's score

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("data_quality_checks") as batch:
        batch.add_column(sa.Column("weight", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("data_quality_checks") as batch:
        batch.drop_column("weight")
