"""webhook events received and their processing

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 23:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: the rowid, so it autoincrements


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("signed_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("endpoint", "idempotency_key", name="uq_webhook_events_endpoint_key"),
    )
    op.create_index("ix_webhook_events_endpoint_seq", "webhook_events", ["endpoint", "seq"])


def downgrade() -> None:
    op.drop_index("ix_webhook_events_endpoint_seq", table_name="webhook_events")
    op.drop_table("webhook_events")
