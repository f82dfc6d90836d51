"""The metadata store: Alembic migrations produce exactly the schema the code declares, on SQLite and
PostgreSQL, and migrating twice is a no-op."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from headwater.store import Store
from headwater.store.tables import metadata

TABLES = {
    "data_pipelines",
    "data_lineage",
    "data_quality_rules",
    "data_quality_checks",
    "pipeline_alerts",
    "alert_instances",
    "alert_deliveries",
    "alert_silences",
    "console_users",
    "console_sessions",
    "console_settings",
    "audit_log",
    "pipeline_steps",
    "data_sources",
    "data_destinations",
    "pipeline_executions",
    "step_executions",
    "api_tokens",  # 0007
    "circuit_breakers",  # 0009
    "last_good_extracts",  # 0009
    "webhook_events",  # 0008
    "stream_processors",  # 0010
    "stream_metrics",  # 0011
    "alembic_version",
}


def _check(url: str) -> None:
    store = Store(url).migrate()
    store.migrate()  # idempotent
    with store.engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) == TABLES
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    store.dispose()


def test_sqlite_schema_matches_code(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.mark.postgres
def test_postgres_schema_matches_code(pg_url: str) -> None:
    _check(pg_url)
