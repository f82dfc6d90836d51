"""POST /api/webhooks/{endpoint} over real HTTP (uvicorn in its own process, as `headwater api` runs
it), then the webhook pipeline: 1,000 signed events posted concurrently are 1,000 rows; bad signatures
are 401, audited and not stored; a repeated Idempotency-Key is stored once; the API killed with
SIGKILL in the middle of the posts loses no event that got its 202, and none is loaded twice after the
senders retry the rest.

Real services: uvicorn, PostgreSQL (store and warehouse, each test its own database) for the 1,000
concurrent posts; the SQLite store and warehouse for the SIGKILL test (both stores take concurrent
posts)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import polars as pl
import pytest
import sqlalchemy as sa

from headwater.connections import Connections
from headwater.pipeline import PipelineRun
from headwater.pipeline.driver import SequentialExecutor, execute
from headwater.settings import Settings
from headwater.spec.loader import find_pipeline
from headwater.store import Store
from headwater.store.store import RunSummary
from headwater.store.tables import audit_log, webhook_events
from headwater.webhooks import sign
from tests.api.server import ApiProcess, free_port
from tests.conftest import run_flow

SECRET = "whsec-api-test-93c1"
SPEC = """\
name: shop_orders
sources:
  orders:
    kind: webhook
    endpoint: shop-orders
    signature: {env: SHOP_HOOK_SECRET, tolerance: 2m}
    max_body_bytes: 2048
    batch_size: 400
    columns: {order_id: int, amount: float}
steps:
  - {name: extract, type: extract, source: orders}
  - {name: load, type: load, depends_on: [extract], destination: {table: shop_orders, mode: append}}
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "shop_orders.yaml").write_text(SPEC)
    # a second endpoint whose secret this environment does not have
    unset = SPEC.replace("shop_orders", "refunds").replace("shop-orders", "refunds")
    (folder / "refunds.yaml").write_text(unset.replace("SHOP_HOOK_SECRET", "REFUNDS_HOOK_SECRET_UNSET"))
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEADWATER_PIPELINES", str(folder))
    monkeypatch.delenv("HEADWATER_DATABASE_URL", raising=False)
    monkeypatch.delenv("HEADWATER_WAREHOUSE_URL", raising=False)
    return Settings.from_env()


def api_for(settings: Settings) -> ApiProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEADWATER_", "PREFECT_API_URL"))}
    env.update(
        HEADWATER_HOME=str(settings.home),
        HEADWATER_DATABASE_URL=settings.database_url,
        HEADWATER_WAREHOUSE_URL=settings.warehouse_url,
        HEADWATER_PIPELINES=str(settings.pipelines_dir),
        SHOP_HOOK_SECRET=SECRET,
    )
    return ApiProcess(env, free_port())


@pytest.fixture
def pg_settings(settings: Settings, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("HEADWATER_DATABASE_URL", pg_url)
    monkeypatch.setenv("HEADWATER_WAREHOUSE_URL", pg_url)
    return Settings.from_env()


@pytest.fixture
def pg_api(pg_settings: Settings) -> Iterator[ApiProcess]:
    api = api_for(pg_settings)
    api.start()
    try:
        yield api
    finally:
        api.stop()


def body_of(order_id: int) -> bytes:
    return json.dumps({"order_id": order_id, "amount": round(order_id * 0.37, 2)}).encode()


def headers(body: bytes, key: str | None, secret: str = SECRET) -> dict[str, str]:
    out = {"Content-Type": "application/json", "Headwater-Signature": sign(secret, body)}
    if key is not None:
        out["Idempotency-Key"] = key
    return out


def post_all(
    url: str,
    order_ids: list[int],
    senders: int = 100,
    on_answer: Callable[[int, int | None], None] | None = None,
) -> dict[int, int | None]:
    """Post every order from `senders` threads at once (each its own connection, as separate senders
    are); the status each got, None when the connection failed before an answer. (httpx's async
    pool spent more CPU than the API under test: threads keep the client light.)"""
    local = threading.local()
    clients: list[httpx.Client] = []

    def one(order_id: int) -> tuple[int, int | None]:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=30, verify=False)  # plain http: no TLS context to build
            clients.append(local.client)
        body = body_of(order_id)
        status: int | None = None
        with contextlib.suppress(httpx.HTTPError):  # no answer; the next post opens a new connection
            status = local.client.post(
                url, content=body, headers=headers(body, f"order-{order_id}")
            ).status_code
        if on_answer is not None:
            on_answer(order_id, status)
        return order_id, status

    try:
        with ThreadPoolExecutor(senders) as pool:
            return dict(pool.map(one, order_ids))
    finally:
        for client in clients:
            client.close()


def run_until_empty(settings: Settings) -> list[RunSummary]:
    """Run the pipeline (the domain's driver, in this process) until a run reads no event."""
    out: list[RunSummary] = []
    store = Store(settings.database_url).migrate()
    connections = Connections(settings.warehouse_url)
    try:
        while not out or out[-1].records_processed:
            run = PipelineRun(find_pipeline(settings.pipelines_dir, "shop_orders"), store, connections)
            run.start()
            out.append(execute(run, SequentialExecutor()))
            assert out[-1].status == "completed", out[-1].error_message
    finally:
        connections.dispose()
        store.dispose()
    return out


def loaded_orders(settings: Settings) -> pl.DataFrame:
    engine = sa.create_engine(settings.warehouse_url)
    try:
        return pl.read_database("SELECT order_id, amount, _event_key FROM shop_orders", engine)
    finally:
        engine.dispose()


def stored_count(settings: Settings) -> int:
    engine = sa.create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(webhook_events)).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_thousand_concurrent_signed_posts_are_a_thousand_rows(
    pg_api: ApiProcess, pg_settings: Settings
) -> None:
    url = f"{pg_api.url}/api/webhooks/shop-orders"
    ids = list(range(1, 1001))
    started = time.monotonic()
    statuses = post_all(url, ids)
    took = time.monotonic() - started
    assert sorted(set(statuses.values())) == [202], {
        s: list(statuses.values()).count(s) for s in statuses.values()
    }
    assert stored_count(pg_settings) == 1000
    print(f"1,000 concurrent signed posts answered 202 in {took:.1f}s")

    summaries = run_until_empty(pg_settings)
    assert [s.records_loaded for s in summaries] == [400, 400, 200, 0]
    rows = loaded_orders(pg_settings)
    assert rows.height == 1000
    assert sorted(rows["order_id"].to_list()) == ids
    assert rows["_event_key"].sort().to_list() == sorted(f"order-{i}" for i in ids)
    assert rows["amount"].sum() == pytest.approx(sum(round(i * 0.37, 2) for i in ids))


@pytest.mark.postgres
def test_bad_signatures_are_401_audited_and_not_stored(pg_api: ApiProcess, pg_settings: Settings) -> None:
    url = f"{pg_api.url}/api/webhooks/shop-orders"
    stale = int(time.time()) - 600
    bad: list[dict[str, str]] = []
    for i in range(10):
        body = body_of(i)
        match i % 4:
            case 0:
                h = headers(body, f"bad-{i}", secret="not-the-secret")
            case 1:
                h = {"Content-Type": "application/json", "Idempotency-Key": f"bad-{i}"}
            case 2:
                h = {**headers(body, f"bad-{i}"), "Headwater-Signature": sign(SECRET, body, stale)}
            case _:
                h = {**headers(body, f"bad-{i}"), "Headwater-Signature": "t=1,v1=zz"}
        bad.append(h)
    answers = [httpx.post(url, content=body_of(i), headers=h, timeout=30) for i, h in enumerate(bad)]
    assert [a.status_code for a in answers] == [401] * 10
    first = answers[0].json()["error"]
    assert "does not match the body" in first["message"] and "Headwater-Signature" in first["fix"]
    assert re.search(r"timestamp is 60[01]s old \(tolerance 120s\)", answers[2].json()["error"]["message"])
    assert all(SECRET not in a.text for a in answers)
    assert stored_count(pg_settings) == 0

    engine = sa.create_engine(pg_settings.database_url)
    try:
        with engine.connect() as conn:
            audited = conn.execute(
                sa.select(audit_log.c.action, audit_log.c.target, audit_log.c.outcome, audit_log.c.source)
            ).all()
    finally:
        engine.dispose()
    assert audited == [("webhook.receive", "webhook shop-orders", "denied", "api")] * 10


@pytest.mark.postgres
def test_the_same_idempotency_key_twice_is_stored_once(pg_api: ApiProcess, pg_settings: Settings) -> None:
    url = f"{pg_api.url}/api/webhooks/shop-orders"
    body = body_of(7)
    first = httpx.post(url, content=body, headers=headers(body, "evt_7"), timeout=30)
    again = httpx.post(url, content=body, headers=headers(body, "evt_7"), timeout=30)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json() == {
        "status": "accepted",
        "endpoint": "shop-orders",
        "event_id": first.json()["event_id"],
        "idempotency_key": "evt_7",
    }
    assert again.json() == {**first.json(), "status": "duplicate"}
    other = body_of(8)
    conflict = httpx.post(url, content=other, headers=headers(other, "evt_7"), timeout=30)
    assert conflict.status_code == 409 and "different body" in conflict.json()["error"]["message"]
    # no header: the body's SHA-256 is the key, so a resend of the same body is a duplicate too
    unkeyed = [httpx.post(url, content=other, headers=headers(other, None), timeout=30) for _ in range(2)]
    assert [u.json()["status"] for u in unkeyed] == ["accepted", "duplicate"]
    assert stored_count(pg_settings) == 2
    assert [s.records_loaded for s in run_until_empty(pg_settings)] == [2, 0]
    assert sorted(loaded_orders(pg_settings)["order_id"].to_list()) == [7, 8]


@pytest.mark.postgres
def test_what_is_refused_before_anything_is_stored(pg_api: ApiProcess, pg_settings: Settings) -> None:
    unknown = httpx.post(f"{pg_api.url}/api/webhooks/nope", content=b"{}", timeout=30)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "there is no webhook endpoint 'nope'"
    assert "kind: webhook and endpoint: nope" in unknown.json()["error"]["fix"]
    assert "shop-orders" not in unknown.text  # the endpoints are not listed to whoever asks

    url = f"{pg_api.url}/api/webhooks/shop-orders"
    big = json.dumps({"order_id": 1, "pad": "x" * 3000}).encode()
    too_big = httpx.post(url, content=big, headers=headers(big, "big"), timeout=30)
    assert too_big.status_code == 413 and "2048 bytes" in too_big.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as the body arrives
        for _ in range(6):
            yield b" " * 500

    chunked = httpx.post(url, content=chunks(), headers={"Headwater-Signature": "t=1,v1=00"}, timeout=30)
    assert chunked.status_code == 413 and "content-length" not in chunked.request.headers

    no_secret = httpx.post(f"{pg_api.url}/api/webhooks/refunds", content=b"{}", timeout=30)
    assert no_secret.status_code == 503
    assert no_secret.json()["error"] == {
        "status": 503,
        "message": "webhook endpoint refunds cannot check signatures: REFUNDS_HOOK_SECRET_UNSET is not set "
        "in the API's environment",
        "fix": "export REFUNDS_HOOK_SECRET_UNSET=<the secret the sender signs with> where `headwater api` "
        "runs, and restart it",
    }

    text = b"order_id=1"
    not_json = httpx.post(url, content=text, headers=headers(text, "form"), timeout=30)
    assert not_json.status_code == 400 and "not UTF-8 JSON" in not_json.json()["error"]["message"]
    assert stored_count(pg_settings) == 0


def test_sigkill_during_the_posts_loses_no_accepted_event(settings: Settings) -> None:
    """600 posts at once; the API is killed with SIGKILL once 150 have their 202. After a restart
    the senders retry every post without a 2xx (real senders retry until they get one): each order
    is then loaded exactly once, and every one that had a 202 before the kill is among them."""
    settings.ensure_home()
    api = api_for(settings)
    api.start()
    url = f"{api.url}/api/webhooks/shop-orders"
    ids = list(range(1, 601))
    statuses: dict[int, int | None] = {}
    accepted: list[int] = []
    lock = threading.Lock()

    def note(order_id: int, status: int | None) -> None:
        with lock:
            statuses[order_id] = status
            if status == 202:
                accepted.append(order_id)

    poster = threading.Thread(target=post_all, args=(url, ids, 50, note))
    poster.start()
    try:
        deadline = time.monotonic() + 120
        while len(accepted) < 150 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert api.process is not None
        api.process.send_signal(signal.SIGKILL)
        assert api.process.wait(timeout=30) == -signal.SIGKILL
        poster.join(timeout=120)
        assert not poster.is_alive()
    finally:
        api.stop()
    before_kill = set(accepted)
    unanswered = [i for i in ids if statuses.get(i) not in (200, 202)]
    assert 150 <= len(before_kill) < 600 and unanswered, (len(before_kill), len(unanswered))
    stored_before_restart = stored_count(settings)
    assert stored_before_restart >= len(before_kill)

    api.start()  # the same store; the senders retry what got no 2xx
    try:
        retried = post_all(url, unanswered, senders=20)
    finally:
        api.stop()
    assert set(retried.values()) <= {200, 202}
    duplicates = [i for i, s in retried.items() if s == 200]  # stored before the kill, answer lost
    assert len(duplicates) == stored_before_restart - len(before_kill)
    assert stored_count(settings) == 600

    run_until_empty(settings)
    rows = loaded_orders(settings)
    assert sorted(rows["order_id"].to_list()) == ids  # each once
    assert before_kill <= set(rows["order_id"].to_list())
    assert rows["amount"].sum() == pytest.approx(sum(round(i * 0.37, 2) for i in ids))
    print(
        f"killed with {len(before_kill)} accepted and {stored_before_restart} stored; "
        f"{len(unanswered)} retried ({len(duplicates)} of them duplicates)"
    )


@pytest.mark.prefect
def test_a_secret_block_checks_the_signatures_and_the_flow_loads_the_events(
    settings: Settings, prefect_api: str
) -> None:
    """The secret in a Prefect Secret block (loaded by the API), and the pipeline run as its real
    Prefect flow."""
    from prefect.blocks.system import Secret

    block = f"shop-hook-{uuid.uuid4().hex[:8]}"
    Secret(value=SECRET).save(block)  # type: ignore[call-arg]
    spec = settings.pipelines_dir / "shop_orders.yaml"
    spec.write_text(SPEC.replace("{env: SHOP_HOOK_SECRET, tolerance: 2m}", f"{{block: {block}}}"))
    settings.ensure_home()
    api = api_for(settings)
    api.env["PREFECT_API_URL"] = prefect_api
    del api.env["SHOP_HOOK_SECRET"]
    api.start()
    url = f"{api.url}/api/webhooks/shop-orders"
    try:
        statuses = post_all(url, list(range(1, 51)), senders=10)
        body = body_of(99)
        wrong = httpx.post(url, content=body, headers=headers(body, "x", secret="not-it"), timeout=30)
    finally:
        api.stop()
    assert set(statuses.values()) == {202} and wrong.status_code == 401

    result = run_flow("shop_orders", settings.pipelines_dir)
    assert (result["status"], result["records_loaded"]) == ("completed", 50)
    rows = loaded_orders(settings)
    assert sorted(rows["order_id"].to_list()) == list(range(1, 51))
    assert run_flow("shop_orders", settings.pipelines_dir)["records_loaded"] == 0
