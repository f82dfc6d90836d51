"""Connections the domain needs, resolved from spec references. Prefect blocks are loaded by flows
and handed in as plain callables: the domain never loads a block itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Lock

import sqlalchemy as sa

from headwater.errors import PermanentError
from headwater.spec.models import ConnectionRef, RestAuth

BlockLookup = Callable[[str], str]


def _no_blocks(kind: str) -> BlockLookup:
    def lookup(name: str) -> str:
        raise PermanentError(
            f"{kind} block {name!r} was asked for, but no Prefect blocks are available here",
            hint="run through `headwater run` / the Prefect flow, or use url: ${ENV_VAR}",
        )

    return lookup


@dataclass
class Connections:
    """Resolves ConnectionRef/RestAuth to URLs, engines and tokens; caches one engine per URL."""

    default_warehouse_url: str
    database_block: BlockLookup = field(default_factory=lambda: _no_blocks("database"))
    secret_block: BlockLookup = field(default_factory=lambda: _no_blocks("credentials"))
    service_account_block: BlockLookup = field(default_factory=lambda: _no_blocks("GA4 service-account"))
    """A saved headwater-ga4-service-account block's key (JSON text), by block name."""
    _engines: dict[str, sa.Engine] = field(default_factory=dict, repr=False)
    _lock: Lock = field(default_factory=Lock, repr=False)
    _secrets: set[str] = field(default_factory=set, repr=False)

    def url(self, ref: ConnectionRef | None) -> str:
        if ref is None:
            return self.default_warehouse_url
        url = ref.url if ref.url is not None else self.database_block(ref.block or "")
        password = sa.make_url(url).password
        if password:
            self._secrets.add(str(password))
        return url

    def engine(self, ref: ConnectionRef | None) -> sa.Engine:
        url = self.url(ref)
        with self._lock:
            if url not in self._engines:
                self._engines[url] = make_engine(url)
            return self._engines[url]

    def token(self, auth: RestAuth) -> str:
        token = auth.token if auth.token is not None else self.secret_block(auth.block or "")
        self._secrets.add(token)
        return token

    def remember_secret(self, value: str) -> None:
        """A secret a source obtained itself (a key, an access token): masked in messages too."""
        if value:
            self._secrets.add(value)

    @property
    def secrets(self) -> set[str]:
        """Every secret value handed out so far, for redaction of messages."""
        return set(self._secrets)

    def dispose(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


def make_engine(url: str) -> sa.Engine:
    """An engine with sane defaults: SQLite waits for locks and enforces foreign keys."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})

        # pysqlite's own transaction handling does not wrap DDL; take it over so that a load's
        # CREATE TABLE rolls back with the rest (SQLAlchemy's documented recipe).
        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))

        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


def display_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)
