"""Bring a store's schema to the newest Alembic revision (safe to call on every start)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: sa.Engine) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
    lock_opts = {"sqlite_begin": "BEGIN IMMEDIATE"}
    with engine.connect().execution_options(**lock_opts) as conn, conn.begin():
        if conn.dialect.name == "postgresql":  # one migrator at a time
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(726173)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
