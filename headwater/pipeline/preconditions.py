"""A spec's `when:`: whether a scheduled or triggered run has anything to do. "Since the last run" is
since the start of this pipeline's latest completed run; before any, every condition holds. The
answer is None (go) or the reason it does not (the run is recorded `skipped` with it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from headwater.connections import Connections
from headwater.errors import PermanentError
from headwater.spec.checks import downstream_loads
from headwater.spec.loader import LoadedSpec
from headwater.spec.models import ExtractStep, LoadStep, Preconditions, SqlSource
from headwater.store.store import Store

APPLIES_TO = ("scheduled", "triggered")
"""A person's run (manual, retry, backfill, replay) does what it was asked: no precondition."""


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _new_files(loaded: LoadedSpec, pattern: str, since: datetime) -> str | None:
    from headwater.extract.files import resolve_paths

    try:
        paths = resolve_paths(pattern, loaded.base_dir)
    except (PermanentError, OSError):
        paths = []
    if not paths:
        return f"when.new_files: no file matches {pattern}"
    newest = max(p.stat().st_mtime for p in paths)
    if newest > since.timestamp():
        return None
    return (
        f"when.new_files: none of the {len(paths)} file(s) matching {pattern} changed since the last "
        f"completed run started ({_stamp(since)}; "
        f"newest modified {_stamp(datetime.fromtimestamp(newest, UTC))})"
    )


def _load_of(loaded: LoadedSpec, source: str) -> LoadStep | None:
    for step in loaded.spec.steps:
        if isinstance(step, ExtractStep) and step.source == source:
            for name in downstream_loads(loaded, step.name):
                found = loaded.spec.step(name)
                if isinstance(found, LoadStep):
                    return found
    return None


def _new_rows(loaded: LoadedSpec, source_name: str, connections: Connections) -> str | None:
    from headwater.extract.sql import has_rows_past
    from headwater.load import read_watermark

    source = loaded.spec.sources[source_name]
    load = _load_of(loaded, source_name)
    if not isinstance(source, SqlSource) or source.incremental is None or load is None:
        return None  # the spec checks refuse this; nothing to gate on
    warehouse = connections.engine(loaded.spec.warehouse_of(load))
    mark = read_watermark(warehouse, loaded.spec.name, source_name)
    if mark is None:
        return None  # never loaded: everything is new
    if has_rows_past(source_name, source, connections, mark, loaded.spec.warehouse):
        return None
    cursor = source.incremental.cursor
    return f"when.new_rows: source {source_name} has no rows past its watermark ({cursor} > {mark})"


def _fresher(
    loaded: LoadedSpec,
    table: str,
    column: str | None,
    since: datetime,
    store: Store,
    connections: Connections,
) -> str | None:
    latest: Any
    if column is None:
        loads = {row["table_name"]: row["last_loaded"] for row in store.last_loads()}
        latest = loads.get(table)
        what = f"no Headwater run loaded {table}"
    else:
        engine = connections.engine(loaded.spec.warehouse)
        tbl = sa.Table(table.rpartition(".")[2], sa.MetaData(), schema=table.rpartition(".")[0] or None)
        with engine.connect() as conn:
            latest = conn.execute(sa.select(sa.func.max(sa.column(column))).select_from(tbl)).scalar()
        what = f"{table}.{column} has no value"
    if isinstance(latest, str):
        latest = datetime.fromisoformat(latest)
    if isinstance(latest, datetime):
        latest = latest if latest.tzinfo else latest.replace(tzinfo=UTC)
        if latest > since:
            return None
        return (
            f"when.fresher: {table} last changed {_stamp(latest)}, "
            f"before the last completed run started ({_stamp(since)})"
        )
    return f"when.fresher: {what} since the last completed run started ({_stamp(since)})"


def unmet(loaded: LoadedSpec, store: Store, connections: Connections) -> str | None:
    """None when every condition of the spec's `when:` holds, else why not (the first that fails)."""
    when: Preconditions | None = loaded.spec.when
    if when is None:
        return None
    since = store.last_success_start(loaded.spec.name)
    if since is None:
        return None
    if when.new_files is not None and (reason := _new_files(loaded, when.new_files, since)):
        return reason
    if when.new_rows is not None and (reason := _new_rows(loaded, when.new_rows, connections)):
        return reason
    if when.fresher is not None:
        return _fresher(loaded, when.fresher.table, when.fresher.column, since, store, connections)
    return None
