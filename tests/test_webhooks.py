"""The webhook domain (headwater.webhooks, the `webhook` source kind), without the HTTP layer:
signatures against an independent HMAC, idempotent storage, event numbering that never passes over
an insert that commits late (PostgreSQL), batches loaded once each even when the run dies between its
load and its end, quarantine of events that break a rule, and the spec checks.

Real services: the SQLite store and warehouse of `hw_env`; the real PostgreSQL (own database) where
marked. The API over real HTTP is tests/api/test_webhooks.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.connections import Connections
from headwater.errors import SpecError
from headwater.extract import extract_source
from headwater.pipeline import PipelineRun
from headwater.pipeline.driver import SequentialExecutor, execute
from headwater.settings import Settings
from headwater.spec.loader import find_pipeline, load_pipeline
from headwater.spec.models import WebhookSignature, WebhookSource
from headwater.store import Store
from headwater.store.store import RunSummary
from headwater.store.tables import webhook_events
from headwater.webhooks import (
    BadSignature,
    IdempotencyConflict,
    idempotency_key,
    read_events,
    sign,
    store_event,
    verify,
)
from tests.conftest import EXAMPLES, REPO

SECRET = "whsec-test-6b1d0f"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

SPEC = """\
name: orders_hook
sources:
  orders:
    kind: webhook
    endpoint: orders
    signature: {{env: ORDERS_HOOK_SECRET}}
    batch_size: {batch}
    records: orders
    columns: {{order_id: int, amount: float}}
steps:
  - {{name: extract, type: extract, source: orders}}
  - {{name: check, type: validate, depends_on: [extract], suite: suite.json}}
  - {{name: load, type: load, depends_on: [check], destination: {{table: hook_orders, mode: append}}}}
"""
SUITE = {
    "name": "hook_orders",
    "expectations": [
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "amount"},
            "meta": {"headwater": {"name": "has_amount", "action": "quarantine"}},
        }
    ],
}


def order_body(order_id: int, amount: float | None) -> bytes:
    return json.dumps({"orders": [{"order_id": order_id, "amount": amount}]}).encode()


# ------------------------------------------------------------ signatures


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"orders": [{"order_id": 1}]}'
    t = int(NOW.timestamp())
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    header = sign(SECRET, body, t)
    assert header == f"t={t},v1={expected}"
    assert verify(SECRET, header, body, tolerance=300, now=NOW) == NOW
    # within the window on both sides; a rotated secret: either v1 matches
    assert verify(SECRET, header, body, tolerance=300, now=NOW + timedelta(seconds=300)) == NOW
    rotated = f"t={t},v1={sign('old-secret', body, t).split('v1=')[1]},v1={expected}"
    assert verify(SECRET, rotated, body, tolerance=300, now=NOW) == NOW


@pytest.mark.parametrize(
    ("header", "body", "now", "reason"),
    [
        (None, b"{}", NOW, "no Headwater-Signature header"),
        ("v1=abc", b"{}", NOW, "malformed Headwater-Signature header"),
        ("t=abc,v1=" + "0" * 64, b"{}", NOW, "not a time in unix seconds"),
        (sign("another-secret", b"{}", int(NOW.timestamp())), b"{}", NOW, "does not match the body"),
        (sign(SECRET, b"{}", int(NOW.timestamp())), b'{"x":1}', NOW, "does not match the body"),
        (sign(SECRET, b"{}", int(NOW.timestamp()) - 301), b"{}", NOW, "is 301s old (tolerance 300s)"),
        (sign(SECRET, b"{}", int(NOW.timestamp()) + 400), b"{}", NOW, "is 400s in the future"),
    ],
)
def test_bad_signatures_are_refused_with_the_reason(
    header: str | None, body: bytes, now: datetime, reason: str
) -> None:
    with pytest.raises(BadSignature) as caught:
        verify(SECRET, header, body, tolerance=300, now=now)
    assert reason in caught.value.reason
    assert SECRET not in caught.value.reason


# ------------------------------------------------------------ storage


def test_one_event_per_idempotency_key(store_engine: sa.Engine) -> None:
    first = store_event(store_engine, "orders", "evt_1", order_body(1, 5.0), signed_at=NOW, now=NOW)
    again = store_event(store_engine, "orders", "evt_1", order_body(1, 5.0), signed_at=NOW, now=NOW)
    assert (first.duplicate, again.duplicate, again.event_id) == (False, True, first.event_id)
    with pytest.raises(IdempotencyConflict, match="already names event"):
        store_event(store_engine, "orders", "evt_1", order_body(1, 6.0), signed_at=NOW, now=NOW)
    # the same key on another endpoint is another event; no header: the body's SHA-256 is the key
    other = store_event(store_engine, "refunds", "evt_1", order_body(1, 5.0), signed_at=NOW, now=NOW)
    assert other.event_id != first.event_id and not other.duplicate
    key = idempotency_key(None, order_body(2, 1.0))
    assert key == "sha256:" + hashlib.sha256(order_body(2, 1.0)).hexdigest()
    with store_engine.connect() as conn:
        rows = conn.execute(
            sa.select(webhook_events.c.endpoint, webhook_events.c.idempotency_key, webhook_events.c.body)
        ).all()
    assert sorted(rows) == [
        ("orders", "evt_1", order_body(1, 5.0).decode()),
        ("refunds", "evt_1", order_body(1, 5.0).decode()),
    ]


@pytest.mark.postgres
def test_an_insert_that_commits_late_is_not_passed_over(pg_url: str) -> None:
    """On PostgreSQL ids are taken when inserts start, not when they commit: event 1 commits after
    event 2 was read. Reading by "seq past the watermark" still gets it, on the next read."""
    store = Store(pg_url).migrate()
    engine = store.engine
    try:
        late = engine.connect()
        tx = late.begin()
        late.execute(
            sa.insert(webhook_events).values(
                endpoint="orders",
                idempotency_key="late",
                body_sha256="x",
                body="{}",
                signed_at=NOW,
                received_at=NOW,
            )
        )  # id 1, not committed
        second = store_event(engine, "orders", "early", b"{}", signed_at=NOW, now=NOW)
        first_read = read_events(engine, "orders", None, 100)
        assert [e.key for e in first_read] == ["early"] and second.event_id == 2
        tx.commit()
        late.close()
        watermark = first_read[-1].seq
        second_read = read_events(engine, "orders", watermark, 100)
        assert [e.key for e in second_read] == ["late"] and second_read[0].seq > watermark
        assert read_events(engine, "orders", second_read[-1].seq, 100) == []
        assert [e.key for e in read_events(engine, "orders", None, 100)] == ["early", "late"]
    finally:
        store.dispose()


def test_bodies_become_rows_with_the_event_columns(store_engine: sa.Engine, tmp_path: Path) -> None:
    bodies: list[Any] = [
        {"orders": [{"order_id": 1, "amount": 2.5, "tags": ["a"]}, {"order_id": 2, "amount": "3"}]},
        {"orders": {"order_id": 3, "amount": 4}},  # one record, not a list
        {"ping": True},  # no records path: one row of event columns only
        {"orders": [{"order_id": 4, "amount": "n/a", "tags": "b"}]},  # tags: text where a list was
    ]
    ids = [
        store_event(
            store_engine,
            "orders",
            f"e{i}",
            json.dumps(b).encode(),
            signed_at=NOW,
            now=NOW + timedelta(seconds=i),
        ).event_id
        for i, b in enumerate(bodies)
    ]
    source = WebhookSource(
        kind="webhook",
        endpoint="orders",
        signature=WebhookSignature(env="X"),
        records="orders",
        columns={"order_id": "int", "amount": "float"},
    )
    result = extract_source(
        "orders", source, base_dir=tmp_path, connections=Connections("sqlite://"), events=store_engine
    )
    at = [NOW + timedelta(seconds=i) for i in (0, 0, 1, 2, 3)]
    expected = pl.DataFrame(
        {
            "_event_id": [ids[0], ids[0], ids[1], ids[2], ids[3]],
            "_event_key": ["e0", "e0", "e1", "e2", "e3"],
            "_received_at": at,
            "order_id": [1, 2, 3, None, 4],
            "amount": [2.5, 3.0, 4.0, None, None],  # "n/a" does not convert: null, for a rule to catch
            "tags": ['["a"]', None, None, None, "b"],  # shapes disagree: nested values as JSON text
        },
        schema_overrides={"_received_at": pl.Datetime("us", "UTC")},
    )
    assert_frame_equal(result.frame, expected)
    assert result.metrics == {"events": 4, "events_without_records": 1, "events_waiting": 0}
    again = extract_source(
        "orders",
        source,
        base_dir=tmp_path,
        connections=Connections("sqlite://"),
        events=store_engine,
        watermark=result.watermark,
    )
    assert again.frame.height == 0 and again.watermark is None
    assert again.frame.columns == ["_event_id", "_event_key", "_received_at", "order_id", "amount"]


# ------------------------------------------------------------ the webhook source in a pipeline


def write_spec(folder: Path, batch: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orders_hook.yaml").write_text(SPEC.format(batch=batch))
    (folder / "suite.json").write_text(json.dumps(SUITE))


def run_once(settings: Settings, folder: Path) -> RunSummary:
    store = Store(settings.database_url).migrate()
    connections = Connections(settings.warehouse_url)
    try:
        run = PipelineRun(find_pipeline(folder, "orders_hook"), store, connections)
        run.start()
        return execute(run, SequentialExecutor())
    finally:
        connections.dispose()
        store.dispose()


def warehouse(settings: Settings, query: str) -> pl.DataFrame:
    engine = sa.create_engine(settings.warehouse_url)
    try:
        return pl.read_database(query, engine)
    finally:
        engine.dispose()


CRASH_AFTER_LOAD = """
import os, signal, sys
from polars.testing import assert_frame_equal

from headwater.connections import Connections
from headwater.pipeline import PipelineRun
from headwater.pipeline.driver import SequentialExecutor, execute
from headwater.settings import Settings
from headwater.spec.loader import find_pipeline
from headwater.store import Store

class DiesAfterTheLoad(SequentialExecutor):
    def submit(self, run, name, inputs):
        done = super().submit(run, name, inputs)
        if name == "load" and done.error is None:  # the load committed; the run never ends
            os.kill(os.getpid(), signal.SIGKILL)
        return done

settings = Settings.from_env()
store = Store(settings.database_url).migrate()
run = PipelineRun(find_pipeline(sys.argv[1], "orders_hook"), store, Connections(settings.warehouse_url))
run.start()
execute(run, DiesAfterTheLoad())
"""


def test_each_event_loads_once_in_batches_even_when_the_run_dies_after_its_load(
    hw_env: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "specs"
    write_spec(folder, batch=8)
    hw_env.ensure_home()
    store = Store(hw_env.database_url).migrate()
    amounts: dict[int, float | None] = {i: (None if i % 7 == 0 else round(i * 1.25, 2)) for i in range(1, 21)}
    for order_id, amount in amounts.items():
        store_event(
            store.engine, "orders", f"evt_{order_id}", order_body(order_id, amount), signed_at=NOW, now=NOW
        )
    store.dispose()

    # run 1 takes events 1-8, loads them, and is killed before it records its end
    killed = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_LOAD, str(folder)], cwd=REPO, env=os.environ.copy(), check=False
    )
    assert killed.returncode == -signal.SIGKILL
    loaded = warehouse(hw_env, "SELECT order_id FROM hook_orders ORDER BY order_id")
    assert loaded["order_id"].to_list() == [i for i in range(1, 9) if i != 7]

    # the next runs take 9-16, 17-20, then nothing: events 1-8 are not loaded again
    summaries = [run_once(hw_env, folder) for _ in range(3)]
    assert [(s.status, s.records_processed, s.records_loaded, s.records_quarantined) for s in summaries] == [
        ("completed", 8, 7, 1),  # 14 has no amount
        ("completed", 4, 4, 0),
        ("completed", 0, 0, 0),
    ]
    store = Store(hw_env.database_url)
    statuses = sorted(r["status"] for r in store.runs("orders_hook"))
    store.dispose()
    assert statuses == ["completed", "completed", "completed", "crashed"]  # the killed run, marked

    good = {i: a for i, a in amounts.items() if a is not None}
    rows = warehouse(hw_env, "SELECT _event_key, order_id, amount FROM hook_orders")
    assert rows.height == len(good) == 18
    assert sorted(rows["order_id"].to_list()) == sorted(good)
    assert rows["_event_key"].n_unique() == rows.height
    assert rows["amount"].sum() == pytest.approx(sum(good.values()))
    quarantined = warehouse(
        hw_env, "SELECT row_data FROM headwater_quarantine WHERE pipeline = 'orders_hook' ORDER BY id"
    )
    assert [json.loads(r)["order_id"] for r in quarantined["row_data"]] == [7, 14]


def test_two_pipelines_reading_one_endpoint_each_load_every_event_once(
    hw_env: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "specs"
    write_spec(folder, batch=4)
    copy = SPEC.format(batch=3).replace("orders_hook", "orders_copy").replace("hook_orders", "copy_orders")
    (folder / "orders_copy.yaml").write_text(copy)
    hw_env.ensure_home()
    store = Store(hw_env.database_url).migrate()
    for order_id in range(1, 11):
        store_event(
            store.engine, "orders", f"evt_{order_id}", order_body(order_id, 1.0), signed_at=NOW, now=NOW
        )
    connections = Connections(hw_env.warehouse_url)
    loaded: dict[str, list[int]] = {}
    try:
        for name in (
            "orders_hook",
            "orders_copy",
            "orders_hook",
            "orders_copy",
            "orders_hook",
            "orders_copy",
        ):
            for _ in range(2):  # interleaved runs of both pipelines, past the end of the events
                run = PipelineRun(find_pipeline(folder, name), store, connections)
                run.start()
                loaded.setdefault(name, []).append(execute(run, SequentialExecutor()).records_loaded)
    finally:
        connections.dispose()
        store.dispose()
    assert loaded == {"orders_hook": [4, 4, 2, 0, 0, 0], "orders_copy": [3, 3, 3, 1, 0, 0]}
    for table in ("hook_orders", "copy_orders"):
        ids = warehouse(hw_env, f"SELECT order_id FROM {table}")["order_id"].to_list()
        assert sorted(ids) == list(range(1, 11))


def test_no_events_completes_with_no_rows_and_the_declared_columns(hw_env: Settings) -> None:
    """The example spec, on a fresh home: nothing posted yet is a completed run of 0 rows."""
    hw_env.ensure_home()
    store = Store(hw_env.database_url).migrate()
    connections = Connections(hw_env.warehouse_url)
    try:
        run = PipelineRun(find_pipeline(EXAMPLES, "n8n_orders_webhook"), store, connections)
        run.start()
        summary = execute(run, SequentialExecutor())
    finally:
        connections.dispose()
        store.dispose()
    assert (summary.status, summary.records_processed, summary.records_loaded) == ("completed", 0, 0)
    table = warehouse(hw_env, "SELECT * FROM n8n_orders")
    assert table.height == 0
    assert table.columns == [
        "_event_id",
        "_event_key",
        "_received_at",
        "order_id",
        "customer",
        "amount",
        "currency",
        "ordered_at",
    ]


# ------------------------------------------------------------ spec checks


@pytest.mark.parametrize(
    ("change", "field", "line", "message", "fix"),
    [
        (
            ("signature: {env: ORDERS_HOOK_SECRET}", "signature: {env: 'not a name!'}"),
            "sources.orders.signature.env",
            6,
            "env is not a variable name",
            "give the name of the environment variable",
        ),
        (
            ("signature: {env: ORDERS_HOOK_SECRET}", "signature: {env: A, block: b}"),
            "sources.orders.signature",
            6,
            "both or neither of env and block",
            "give exactly one of env or block",
        ),
        (
            ("endpoint: orders", "endpoint: orders/new"),
            "sources.orders.endpoint",
            5,
            "String should match pattern",
            None,
        ),
        (
            ("{order_id: int, amount: float}", "{order_id: integer128}"),
            "sources.orders.columns",
            9,
            "unknown type 'integer128'",
            None,
        ),
        (
            (
                "{name: load, type: load, depends_on: [check]",
                "{name: load, type: load, depends_on: [extract]",
            ),
            "sources.orders",
            3,
            "a webhook source must be extracted by one step that feeds exactly one load step",
            "extract it once, load it with one load step",
        ),
    ],
)
def test_bad_webhook_config_names_file_line_and_fix(
    tmp_path: Path, change: tuple[str, str], field: str, line: int, message: str, fix: str | None
) -> None:
    write_spec(tmp_path, batch=10)
    text = SPEC.format(batch=10).replace(*change)
    if "depends_on: [extract]" in change[1]:  # a second load of the same events
        text += "  - {name: load2, type: load, depends_on: [check], destination: {table: t2}}\n"
    (tmp_path / "orders_hook.yaml").write_text(text)
    with pytest.raises(SpecError) as caught:
        load_pipeline(tmp_path / "orders_hook.yaml")
    problem = caught.value.problems[0]
    assert (problem.field, problem.line) == (field, line)
    assert message in problem.message
    if fix is not None:
        assert problem.hint is not None and fix in problem.hint
    assert str(tmp_path / "orders_hook.yaml") in str(caught.value)


def test_the_example_validates_and_keeps_the_secret_out(capsys: pytest.CaptureFixture[str]) -> None:
    from headwater.cli import main

    assert main(["validate", str(EXAMPLES / "n8n_orders_webhook.yaml")]) == 0
    assert "n8n_orders_webhook: 3 steps" in capsys.readouterr().out
    spec = load_pipeline(EXAMPLES / "n8n_orders_webhook.yaml", env={}).spec
    source: Any = spec.sources["orders"]
    assert (source.endpoint, source.signature.env, source.max_body_bytes) == (
        "n8n_orders",
        "N8N_WEBHOOK_SECRET",
        1_048_576,
    )
