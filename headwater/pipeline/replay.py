"""Replaying quarantine: the rows a validate step set aside go through that step again (with the
lookups as they are now) and the ones that pass load, once: their quarantine records are marked
replayed in the same transaction, and rows still failing stay quarantined."""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa

from headwater.load.quarantine import decode_rows, read_quarantined
from headwater.load.schema import split_table
from headwater.spec.checks import downstream_loads
from headwater.spec.loader import LoadedSpec
from headwater.spec.models import LoadStep, ValidateStep

QUARANTINE_ID = "__hw_quarantine_id"


def _polars_type(coltype: sa.types.TypeEngine) -> pl.DataType | None:  # type: ignore[type-arg]
    if isinstance(coltype, sa.Boolean):
        return pl.Boolean()
    if isinstance(coltype, sa.Integer):
        return pl.Int64()
    if isinstance(coltype, sa.Float | sa.Numeric):
        return pl.Float64()
    if isinstance(coltype, sa.DateTime):
        return pl.Datetime("us", "UTC" if coltype.timezone else None)
    if isinstance(coltype, sa.Date):
        return pl.Date()
    if isinstance(coltype, sa.String | sa.Text):
        return pl.String()
    return None


def target_schema(engine: sa.Engine, table: str) -> dict[str, pl.DataType]:
    schema, name = split_table(table)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(name, schema=schema):
            return {}
        reflected = sa.Table(name, sa.MetaData(), autoload_with=conn, schema=schema)
    return {c.name: t for c in reflected.columns if (t := _polars_type(c.type)) is not None}


def replay_inputs(loaded: LoadedSpec, engine_for: dict[str, sa.Engine]) -> dict[str, pl.DataFrame]:
    """For each validate step with a suite: its quarantined rows (with their record ids), keyed by
    the step's primary input, which the replay then does not run."""
    spec = loaded.spec
    out: dict[str, pl.DataFrame] = {}
    for step in spec.steps:
        if not (isinstance(step, ValidateStep) and step.suite and step.primary_input):
            continue
        frames = []
        for load_name in downstream_loads(loaded, step.name):
            load = spec.step(load_name)
            assert isinstance(load, LoadStep)
            engine = engine_for[load_name]
            records = read_quarantined(engine, spec.name, load.destination.table)
            types = target_schema(engine, load.destination.table)
            if not records:
                frames.append(pl.DataFrame(schema={**types, QUARANTINE_ID: pl.Int64()}))
                continue
            raw = pl.read_ndjson("\n".join(r["row_data"] for r in records).encode(), infer_schema_length=None)
            schema = {c: types.get(c, raw.schema[c]) for c in raw.columns}
            rows = decode_rows(records, pl.Schema(schema))
            frames.append(rows.with_columns(pl.Series(QUARANTINE_ID, [r["id"] for r in records], pl.Int64)))
        out[step.primary_input] = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    return out


def skipped_for_replay(loaded: LoadedSpec, replaced: set[str]) -> set[str]:
    """Steps a replay need not run: the replaced inputs and whatever only they need."""
    spec = loaded.spec
    needed: set[str] = set()
    stack = [
        s.name for s in spec.steps if s.name not in replaced and not _feeds_only(loaded, s.name, replaced)
    ]
    while stack:
        name = stack.pop()
        if name in needed or name in replaced:
            continue
        needed.add(name)
        stack.extend(spec.step(name).depends_on)
    return {s.name for s in spec.steps} - needed


def _feeds_only(loaded: LoadedSpec, name: str, replaced: set[str]) -> bool:
    """True for ancestors of the replaced steps that nothing else needs."""
    spec = loaded.spec
    children = [s.name for s in spec.steps if name in s.depends_on]
    if name in replaced:
        return True
    return bool(children) and all(_feeds_only(loaded, c, replaced) for c in children)
