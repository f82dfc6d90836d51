"""headwater.load against both real warehouses: every test runs on SQLite (a file in tmp_path) and on
PostgreSQL (a throwaway database), and checks values read back, not just the absence of errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.connections import make_engine
from headwater.errors import PermanentError, TransientError
from headwater.load import LoadResult, WatermarkUpdate, load_frame, read_watermark
from headwater.spec.models import Destination

PIPELINE = "test_load"
RUN = "run-0001"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A real, empty warehouse: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def load(
    engine: sa.Engine,
    frame: pl.DataFrame,
    table: str = "t",
    mode: str = "append",
    primary_key: list[str] | None = None,
    watermarks: list[WatermarkUpdate] | None = None,
) -> LoadResult:
    destination = Destination(table=table, mode=mode, primary_key=primary_key or [])  # type: ignore[arg-type]
    return load_frame(engine, frame, destination, pipeline=PIPELINE, run_id=RUN, watermarks=watermarks)


def raw_rows(engine: sa.Engine, table: str = "t", order_by: str = "id") -> list[tuple[Any, ...]]:
    """Every row exactly as the driver returns it (no normalising), for before/after comparisons."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(f'SELECT * FROM "{table}" ORDER BY "{order_by}"')]


def table_exists(engine: sa.Engine, table: str = "t") -> bool:
    with engine.connect() as conn:
        return sa.inspect(conn).has_table(table)


def scalar(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar_one()


def read_table(
    engine: sa.Engine, schema: dict[str, pl.DataType], table: str = "t", order_by: str = "id"
) -> pl.DataFrame:
    """The table as a frame of `schema`, undoing what a backend stores differently: SQLite keeps
    dates and datetimes as ISO text, booleans as 0/1 and JSON as text; PostgreSQL returns JSONB as lists."""
    with engine.connect() as conn:
        result = conn.exec_driver_sql(f'SELECT * FROM "{table}" ORDER BY "{order_by}"')
        columns = list(result.keys())
        rows = [tuple(r) for r in result]
    assert columns == list(schema), f"table columns {columns} != expected {list(schema)}"
    raw = pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)
    exprs = []
    for name, dtype in schema.items():
        col, stored = pl.col(name), raw.schema[name]
        if stored == pl.String and dtype == pl.Date:
            exprs.append(col.str.to_date("%Y-%m-%d"))
        elif stored == pl.String and isinstance(dtype, pl.Datetime):
            exprs.append(col.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit=dtype.time_unit))
        elif stored == pl.String and isinstance(dtype, pl.List):
            exprs.append(col.str.json_decode(dtype))
        else:
            exprs.append(col.cast(dtype))
    return raw.with_columns(exprs)


def typed_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "qty": [10, -3, None, 2**40],
            "price": [1 / 3, 0.1, None, -2.5e-7],
            "label": ["plain", "", None, 'quote " comma , newline\nend'],
            "flag": [True, False, None, True],
            "day": [date(2024, 1, 31), date(1999, 12, 31), None, date(2024, 2, 29)],
            "ts": [
                datetime(2024, 1, 31, 23, 59, 59, 123456),
                datetime(2000, 1, 1),
                None,
                datetime(2024, 2, 29, 12, 0, 0, 1),
            ],
            "tags": [[1, 2, 3], [], None, [42]],
        },
        schema={
            "id": pl.Int64,
            "qty": pl.Int64,
            "price": pl.Float64,
            "label": pl.String,
            "flag": pl.Boolean,
            "day": pl.Date,
            "ts": pl.Datetime("us"),
            "tags": pl.List(pl.Int64),
        },
    )


# ---------------------------------------------------------------- create, append, overwrite


def test_create_from_schema_reads_back_every_type(warehouse: sa.Engine) -> None:
    frame = typed_frame()
    result = load(warehouse, frame, primary_key=["id"])
    assert (result.table, result.mode, result.rows, result.inserted) == ("t", "append", 4, 4)
    assert result.created_table is True and result.added_columns == []
    assert_frame_equal(read_table(warehouse, dict(frame.schema)), frame)
    # empty string and null stay apart, and a null list is SQL NULL (not the JSON text 'null')
    assert scalar(warehouse, "SELECT count(*) FROM t WHERE label = ''") == 1
    assert scalar(warehouse, "SELECT count(*) FROM t WHERE label IS NULL") == 1
    assert scalar(warehouse, "SELECT count(*) FROM t WHERE tags IS NULL") == 1
    with warehouse.connect() as conn:
        pk = sa.inspect(conn).get_pk_constraint("t")
    assert pk["constrained_columns"] == ["id"]


def test_append_twice_doubles_rows(warehouse: sa.Engine) -> None:
    frame = pl.DataFrame({"id": [1, 2, 3], "amount": [1.5, 2.5, None]})
    first = load(warehouse, frame)
    second = load(warehouse, frame)
    assert (first.created_table, first.inserted) == (True, 3)
    assert (second.created_table, second.inserted, second.added_columns) == (False, 3, [])
    expected = pl.concat([frame, frame]).sort("id", "amount", nulls_last=True)
    got = read_table(warehouse, dict(frame.schema)).sort("id", "amount", nulls_last=True)
    assert_frame_equal(got, expected)
    assert scalar(warehouse, "SELECT sum(amount) FROM t") == pytest.approx(2 * (1.5 + 2.5))


def test_overwrite_replaces_rows_and_counts_deleted(warehouse: sa.Engine) -> None:
    load(warehouse, pl.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]}), primary_key=["id"])
    new = pl.DataFrame({"id": [3, 7], "name": ["c2", "g"]})
    result = load(warehouse, new, mode="overwrite", primary_key=["id"])
    assert (result.mode, result.deleted, result.inserted, result.created_table) == ("overwrite", 3, 2, False)
    assert_frame_equal(read_table(warehouse, dict(new.schema)), new)


# ---------------------------------------------------------------- upsert


def expected_upsert(old: pl.DataFrame, new: pl.DataFrame, key: str) -> tuple[pl.DataFrame, int, int, int]:
    """What an upsert of `new` onto `old` must leave and report, computed with plain Polars."""
    table = pl.concat([old.join(new, on=key, how="anti"), new]).sort(key)
    inserted = new.join(old, on=key, how="anti").height
    others = [c for c in new.columns if c != key]
    both = new.join(old, on=key, how="inner", suffix="_old")
    same = pl.all_horizontal(pl.col(c).eq_missing(pl.col(f"{c}_old")) for c in others)
    unchanged = both.filter(same).height
    return table, inserted, both.height - unchanged, unchanged


def test_upsert_counts_and_final_table(warehouse: sa.Engine) -> None:
    old = pl.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "name": ["a", "b", "c", None, "e"],
            "score": [1.0, 2.0, None, 4.0, 5.0],
            "day": [date(2024, 1, d) for d in range(1, 6)],
        }
    )
    new = pl.DataFrame(
        {
            "id": [2, 3, 4, 5, 6, 7],
            "name": ["b", "c", None, "E", "f", None],  # 5 changed
            "score": [2.0, 3.0, 4.0, 5.0, 6.0, None],  # 3 changed null -> 3.0
            "day": [
                date(2024, 1, 2),
                date(2024, 1, 3),
                date(2024, 1, 4),
                date(2024, 1, 5),
                date(2024, 1, 6),
                None,
            ],
        }
    )
    first = load(warehouse, old, mode="upsert", primary_key=["id"])
    assert (first.created_table, first.inserted, first.updated, first.unchanged) == (True, 5, 0, 0)

    table, inserted, updated, unchanged = expected_upsert(old, new, "id")
    assert (inserted, updated, unchanged) == (2, 2, 2)  # the fixture data says so, independently
    result = load(warehouse, new, mode="upsert", primary_key=["id"])
    counts = (result.rows, result.inserted, result.updated, result.unchanged)
    assert counts == (new.height, inserted, updated, unchanged)
    assert_frame_equal(read_table(warehouse, dict(old.schema)), table)

    before = raw_rows(warehouse)
    again = load(warehouse, new, mode="upsert", primary_key=["id"])
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, new.height)
    assert raw_rows(warehouse) == before


def test_upsert_of_every_type_is_idempotent(warehouse: sa.Engine) -> None:
    frame = typed_frame()
    load(warehouse, frame, mode="upsert", primary_key=["id"])
    again = load(warehouse, frame, mode="upsert", primary_key=["id"])
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, frame.height)
    assert_frame_equal(read_table(warehouse, dict(frame.schema)), frame)


def test_upsert_into_table_without_key_fails(warehouse: sa.Engine) -> None:
    frame = pl.DataFrame({"id": [1, 2], "v": ["x", "y"]})
    load(warehouse, frame)  # no primary key: a plain table
    before = raw_rows(warehouse)
    with pytest.raises(PermanentError, match=r"no primary key or unique index on \(id\)"):
        load(warehouse, frame.with_columns(v=pl.lit("z")), mode="upsert", primary_key=["id"])
    assert raw_rows(warehouse) == before


# ---------------------------------------------------------------- bad keys, failures, rollback


def test_duplicate_keys_fail_and_leave_target_untouched(warehouse: sa.Engine) -> None:
    load(warehouse, pl.DataFrame({"id": [1, 2], "v": ["a", "b"]}), primary_key=["id"])
    before = raw_rows(warehouse)
    dupes = pl.DataFrame({"id": [2, 3, 3, 4, 4, 4], "v": ["B", "c", "c2", "d", "d2", "d3"]})
    with pytest.raises(PermanentError) as info:
        load(warehouse, dupes, mode="upsert", primary_key=["id"])
    message = str(info.value)
    assert "5 row(s)" in message  # rows sharing a key: 3, 3, 4, 4, 4
    assert "(3,)" in message and "(4,)" in message
    assert "dedupe" in message
    assert raw_rows(warehouse) == before


def test_null_key_fails_and_creates_nothing(warehouse: sa.Engine) -> None:
    frame = pl.DataFrame({"id": [1, None, 3, None], "v": ["a", "b", "c", "d"]})
    with pytest.raises(PermanentError, match=r"2 row\(s\) .* null primary key \(id\)"):
        load(warehouse, frame, mode="upsert", primary_key=["id"])
    assert not table_exists(warehouse)


@pytest.mark.parametrize("mode", ["append", "overwrite", "upsert"])
def test_rejected_value_rolls_back_rows_and_watermark(warehouse: sa.Engine, mode: str) -> None:
    load(
        warehouse,
        pl.DataFrame({"id": [1, 2], "amount": [10, 20]}),
        primary_key=["id"],
        watermarks=[WatermarkUpdate("orders", 100)],
    )
    before = raw_rows(warehouse)
    # amount is BIGINT in the target; the second row's value cannot be one
    bad = pl.DataFrame({"id": [3, 4, 5], "amount": ["30", "forty", "50"]})
    with pytest.raises(PermanentError, match=r"row 2 of the load, column amount: .*forty"):
        load(warehouse, bad, mode=mode, primary_key=["id"], watermarks=[WatermarkUpdate("orders", 200)])
    assert raw_rows(warehouse) == before
    assert read_watermark(warehouse, PIPELINE, "orders") == 100


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_text_that_is_a_number_fits_a_numeric_column(warehouse: sa.Engine, mode: str) -> None:
    load(warehouse, pl.DataFrame({"id": [1, 2], "amount": [10, 20]}), primary_key=["id"])
    text = pl.DataFrame({"id": [3, 4], "amount": ["30", "-7"]})
    result = load(warehouse, text, mode=mode, primary_key=["id"])
    assert result.inserted == 2
    assert raw_rows(warehouse) == [(1, 10), (2, 20), (3, 30), (4, -7)]
    assert scalar(warehouse, "SELECT sum(amount) FROM t") == 53


def test_key_conflict_in_append_rolls_back(warehouse: sa.Engine) -> None:
    load(
        warehouse,
        pl.DataFrame({"id": [1, 2], "v": ["a", "b"]}),
        primary_key=["id"],
        watermarks=[WatermarkUpdate("src", 1)],
    )
    before = raw_rows(warehouse)
    with pytest.raises(PermanentError, match=r"(?i)unique constraint"):
        load(
            warehouse,
            pl.DataFrame({"id": [3, 2], "v": ["c", "b again"]}),
            primary_key=["id"],
            watermarks=[WatermarkUpdate("src", 2)],
        )
    assert raw_rows(warehouse) == before
    assert read_watermark(warehouse, PIPELINE, "src") == 1


def test_failed_load_that_created_the_table_leaves_no_table(warehouse: sa.Engine) -> None:
    # UInt64 becomes BIGINT, which cannot hold 2**64 - 1: the table is created, then the row is rejected
    frame = pl.DataFrame({"id": [1, 2], "big": [5, 2**64 - 1]}, schema={"id": pl.Int64, "big": pl.UInt64})
    with pytest.raises(PermanentError, match=r"row 2 of the load, column big: .*out of range"):
        load(warehouse, frame, primary_key=["id"], watermarks=[WatermarkUpdate("src", 9)])
    assert not table_exists(warehouse)
    assert read_watermark(warehouse, PIPELINE, "src") is None


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_constraint_of_the_target_rejects_a_row_and_rolls_back(warehouse: sa.Engine, mode: str) -> None:
    with warehouse.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id BIGINT PRIMARY KEY, amount BIGINT CHECK (amount >= 0))")
    first = load(
        warehouse,
        pl.DataFrame({"id": [1, 2], "amount": [10, 20]}),
        primary_key=["id"],
        watermarks=[WatermarkUpdate("src", 1)],
    )
    assert (first.created_table, first.inserted) == (False, 2)
    before = raw_rows(warehouse)
    ids = [2, 3] if mode == "upsert" else [3, 4]  # an update and an insert; two inserts
    with pytest.raises(PermanentError, match=r"(?i)check constraint"):
        load(
            warehouse,
            pl.DataFrame({"id": ids, "amount": [25, -1]}),
            mode=mode,
            primary_key=["id"],
            watermarks=[WatermarkUpdate("src", 2)],
        )
    assert raw_rows(warehouse) == before == [(1, 10), (2, 20)]
    assert read_watermark(warehouse, PIPELINE, "src") == 1


def impatient_engine(engine: sa.Engine) -> sa.Engine:
    """An engine on the same warehouse that waits at most ~0.2 s for a lock."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        url = url.update_query_dict({"options": "-c lock_timeout=200"})
    impatient = make_engine(url.render_as_string(hide_password=False))
    if url.get_backend_name() == "sqlite":

        @sa.event.listens_for(impatient, "connect")
        def _short_busy_timeout(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.execute("PRAGMA busy_timeout = 200")

    return impatient


@contextmanager
def uncommitted_insert(engine: sa.Engine, sql: str) -> Iterator[None]:
    """Another session that has written (and so holds locks) but not committed, until the block ends."""
    other = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        with other.connect() as conn:
            transaction = conn.begin()
            conn.exec_driver_sql(sql)
            yield
            transaction.rollback()
    finally:
        other.dispose()


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_lock_wait_is_transient_and_a_retry_succeeds(warehouse: sa.Engine, mode: str) -> None:
    load(
        warehouse,
        pl.DataFrame({"id": [1], "v": [1]}),
        primary_key=["id"],
        watermarks=[WatermarkUpdate("s", 1)],
    )
    before = raw_rows(warehouse)
    impatient = impatient_engine(warehouse)
    frame = pl.DataFrame({"id": [3, 2], "v": [3, 2]})
    try:
        # SQLite: the other session holds the write lock; PostgreSQL: it holds the row with key 2
        with (
            uncommitted_insert(warehouse, "INSERT INTO t (id, v) VALUES (2, 0)"),
            pytest.raises(TransientError, match="lock"),
        ):
            load(impatient, frame, mode=mode, primary_key=["id"], watermarks=[WatermarkUpdate("s", 2)])
        assert raw_rows(warehouse) == before
        assert read_watermark(warehouse, PIPELINE, "s") == 1
        retry = load(impatient, frame, mode=mode, primary_key=["id"], watermarks=[WatermarkUpdate("s", 2)])
    finally:
        impatient.dispose()
    assert retry.inserted == 2
    assert raw_rows(warehouse) == [(1, 1), (2, 2), (3, 3)]
    assert read_watermark(warehouse, PIPELINE, "s") == 2


# ---------------------------------------------------------------- schema drift, watermarks


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_new_column_is_added_and_old_rows_are_null(warehouse: sa.Engine, mode: str) -> None:
    old = pl.DataFrame({"id": [1, 2], "v": ["a", "b"]})
    load(warehouse, old, mode=mode, primary_key=["id"])
    new = pl.DataFrame({"id": [3], "v": ["c"], "newcol": [7.5]})
    result = load(warehouse, new, mode=mode, primary_key=["id"])
    assert (result.created_table, result.added_columns, result.inserted) == (False, ["newcol"], 1)
    expected = pl.concat([old, new], how="diagonal")
    assert_frame_equal(read_table(warehouse, dict(expected.schema)), expected)
    assert scalar(warehouse, "SELECT count(*) FROM t WHERE newcol IS NULL") == 2


def test_watermarks_are_written_with_the_load_and_keep_their_type(warehouse: sa.Engine) -> None:
    assert read_watermark(warehouse, PIPELINE, "ids") is None
    stamp = datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=UTC)
    first = load(
        warehouse,
        pl.DataFrame({"id": [1]}),
        watermarks=[
            WatermarkUpdate("ids", 41),
            WatermarkUpdate("ts", stamp),
            WatermarkUpdate("skipped", None),
        ],
    )
    assert first.watermarks == {"ids": 41, "ts": stamp}
    ids, ts = read_watermark(warehouse, PIPELINE, "ids"), read_watermark(warehouse, PIPELINE, "ts")
    assert type(ids) is int and ids == 41
    assert type(ts) is datetime and ts == stamp and ts.utcoffset() is not None
    assert read_watermark(warehouse, PIPELINE, "skipped") is None
    assert read_watermark(warehouse, "another_pipeline", "ids") is None

    naive = datetime(2024, 6, 1, 8, 0)
    load(
        warehouse,
        pl.DataFrame({"id": [2]}),
        watermarks=[WatermarkUpdate("ids", 42), WatermarkUpdate("ts", naive)],
    )
    assert read_watermark(warehouse, PIPELINE, "ids") == 42
    moved = read_watermark(warehouse, PIPELINE, "ts")
    assert type(moved) is datetime and moved == naive and moved.tzinfo is None
    assert scalar(warehouse, "SELECT count(*) FROM t") == 2
