"""Shared helpers of the op tests: run one op, read its parse error, ask DuckDB for the reference."""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl
import pytest

from headwater.transform import OpContext
from headwater.transform.registry import OpParseError, parse_op


def run(op: dict[str, Any], frame: pl.DataFrame) -> pl.DataFrame:
    return parse_op(op, 0).apply(frame.lazy(), OpContext()).collect()


def parse_error(op: dict[str, Any]) -> str:
    with pytest.raises(OpParseError) as info:
        parse_op(op, 0)
    return str(info.value)


def duck(sql: str, **frames: pl.DataFrame) -> pl.DataFrame:
    """The reference result: DuckDB SQL over the same frames (session time zone UTC)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, frame in frames.items():
        con.register(name, frame)
    return con.sql(sql).pl()
