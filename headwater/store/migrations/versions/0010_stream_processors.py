"""stream processors

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 01:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_processors",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("stream", sa.String(length=200), nullable=False),
        sa.Column("group_name", sa.String(length=200), nullable=False),
        sa.Column("consumer", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_batch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("events_read", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("events_loaded", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("events_dead", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_id", sa.String(length=64), nullable=True),
        sa.Column("lag", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("stream_processors")
