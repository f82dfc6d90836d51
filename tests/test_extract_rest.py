"""REST extract against a real local HTTP server (no mocks): pagination, auth, request-level retries
honouring Retry-After, fail-fast on 4xx, and the same behaviour through the real Prefect flow.

Real services: a ThreadingHTTPServer on 127.0.0.1 (every test); the Prefect test harness and the
SQLite store/warehouse of `hw_env` (tests marked `prefect`)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.connections import Connections
from headwater.errors import PermanentError, TransientError
from headwater.extract.rest import RestReader, read_rest, retry_after_seconds
from headwater.settings import Settings
from headwater.spec.models import RestSource
from headwater.store import Store
from tests.conftest import run_flow

TOKEN = "hw-test-token-5f3a9c"  # a test value, never a real secret


# ------------------------------------------------------------------ the scripted server


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hit:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    at: float  # time.monotonic() on arrival


class FakeApi:
    """What the server answers: the next queued Reply, or `respond(hit)` when set. Every request is
    logged in `hits`. An unscripted request gets 418, which the reader treats as permanent."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.replies: deque[Reply] = deque()
        self.respond: Callable[[Hit], Reply] | None = None
        self.hits: list[Hit] = []
        self.lock = threading.Lock()

    def url(self, path: str = "/orders") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def answer(self, hit: Hit) -> Reply:
        with self.lock:
            self.hits.append(hit)
            if self.respond is not None:
                return self.respond(hit)
            if self.replies:
                return self.replies.popleft()
        return Reply(418, {"error": "no scripted reply"})


class _ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    api: FakeApi


class _Handler(BaseHTTPRequestHandler):
    server: _ApiServer

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        hit = Hit(
            self.command,
            split.path,
            dict(parse_qsl(split.query)),
            {k.lower(): v for k, v in self.headers.items()},
            time.monotonic(),
        )
        reply = self.server.api.answer(hit)
        payload = json.dumps(reply.body).encode() if reply.body is not None else b""
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = _ApiServer(("127.0.0.1", 0), _Handler)
    server.api = FakeApi(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def rows(*ids: int) -> list[dict[str, Any]]:
    return [{"id": i, "amount": i * 1.5} for i in ids]


def source(url: str, **fields: Any) -> RestSource:
    """A RestSource as the spec loader hands it over (the ${ENV} token already resolved)."""
    return RestSource.model_validate({"kind": "rest", "url": url, "auth": {"token": TOKEN}, **fields})


def connections(tmp_path: Path) -> Connections:
    return Connections(default_warehouse_url=f"sqlite:///{tmp_path / 'warehouse.db'}")


def ids(frame: pl.DataFrame) -> list[int]:
    return frame["id"].to_list()


# ------------------------------------------------------------------ pagination and records path


def test_page_pagination_walks_pages_until_an_empty_one(api: FakeApi, tmp_path: Path) -> None:
    api.queue(
        Reply(body={"data": rows(1, 2)}),
        Reply(body={"data": rows(3, 4)}),
        Reply(body={"data": []}),
        Reply(body={"data": rows(99)}),
    )  # never asked for: paging stops at the empty page
    src = source(
        api.url(),
        records="data",
        params={"status": "open"},
        pagination={"type": "page", "param": "page", "size_param": "per_page", "size": 2},
    )

    result = read_rest("orders", src, connections(tmp_path))

    assert ids(result.frame) == [1, 2, 3, 4]
    assert result.frame["amount"].to_list() == [1.5, 3.0, 4.5, 6.0]
    assert [h.query for h in api.hits] == [
        {"status": "open", "per_page": "2", "page": "1"},
        {"status": "open", "per_page": "2", "page": "2"},
        {"status": "open", "per_page": "2", "page": "3"},
    ]
    assert [(h.method, h.path) for h in api.hits] == [("GET", "/orders")] * 3
    assert result.metrics == {"http_requests": 3, "http_retries": 0, "http_retry_statuses": []}


def test_offset_pagination_advances_by_records_received(api: FakeApi, tmp_path: Path) -> None:
    data = rows(10, 11, 12, 13, 14)

    def respond(hit: Hit) -> Reply:
        offset, limit = int(hit.query["offset"]), int(hit.query["limit"])
        return Reply(body={"result": {"items": data[offset : offset + limit]}})

    api.respond = respond
    src = source(
        api.url(),
        records="result.items",
        pagination={"type": "offset", "param": "offset", "size_param": "limit", "size": 2},
    )

    result = read_rest("orders", src, connections(tmp_path))

    assert ids(result.frame) == [10, 11, 12, 13, 14]
    # 0, 2, 4 (a short page of 1), then 5: the empty page ends the walk
    assert [h.query for h in api.hits] == [{"limit": "2", "offset": str(o)} for o in (0, 2, 4, 5)]
    assert result.metrics["http_requests"] == 4


def test_cursor_pagination_stops_when_the_cursor_is_missing(api: FakeApi, tmp_path: Path) -> None:
    api.queue(
        Reply(body={"items": rows(1, 2), "meta": {"next_cursor": "c-2"}}),
        Reply(body={"items": rows(3), "meta": {"next_cursor": "c-3"}}),
        Reply(body={"items": rows(4), "meta": {}}),
        Reply(body={"items": rows(99)}),
    )
    src = source(
        api.url(),
        records="items",
        params={"status": "open"},
        pagination={"type": "cursor", "param": "cursor", "cursor_path": "meta.next_cursor"},
    )

    result = read_rest("orders", src, connections(tmp_path))

    assert ids(result.frame) == [1, 2, 3, 4]
    assert [h.query for h in api.hits] == [
        {"status": "open"},
        {"status": "open", "cursor": "c-2"},
        {"status": "open", "cursor": "c-3"},
    ]
    assert result.metrics["http_requests"] == 3


def test_next_link_from_the_body_follows_relative_links(api: FakeApi, tmp_path: Path) -> None:
    api.queue(
        Reply(body={"data": rows(1, 2), "links": {"next": "/orders?page_token=p2"}}),
        Reply(body={"data": rows(3), "links": {"next": api.url("/v2/orders?page_token=p3")}}),
        Reply(body={"data": rows(4), "links": {"next": None}}),
        Reply(body={"data": rows(99)}),
    )
    src = source(
        api.url(),
        records="data",
        params={"status": "open"},
        pagination={"type": "next_link", "next_path": "links.next", "size_param": "limit", "size": 2},
    )

    result = read_rest("orders", src, connections(tmp_path))

    assert ids(result.frame) == [1, 2, 3, 4]
    # the first request carries the spec's params; a next link is followed as given
    assert [(h.path, h.query) for h in api.hits] == [
        ("/orders", {"status": "open", "limit": "2"}),
        ("/orders", {"page_token": "p2"}),
        ("/v2/orders", {"page_token": "p3"}),
    ]


def test_next_link_from_the_link_header(api: FakeApi, tmp_path: Path) -> None:
    api.queue(
        Reply(body=rows(1, 2), headers={"Link": f'<{api.url()}?after=2>; rel="next"'}),
        Reply(body=rows(3), headers={"Link": f'<{api.url()}?after=2>; rel="prev"'}),
        Reply(body=rows(99)),
    )
    src = source(api.url(), pagination={"type": "next_link"})  # records: the body is the list

    result = read_rest("orders", src, connections(tmp_path))

    assert ids(result.frame) == [1, 2, 3]
    assert [h.query for h in api.hits] == [{}, {"after": "2"}]


def test_records_path_may_index_into_lists(api: FakeApi, tmp_path: Path) -> None:
    api.queue(Reply(body={"payload": [{"rows": rows(7, 8)}, {"rows": rows(99)}]}))
    result = read_rest("orders", source(api.url(), records="payload.0.rows"), connections(tmp_path))
    assert ids(result.frame) == [7, 8]
    assert len(api.hits) == 1


def test_records_path_that_is_not_a_list_is_permanent(api: FakeApi, tmp_path: Path) -> None:
    api.queue(Reply(body={"data": "oops"}))
    with pytest.raises(PermanentError, match=r"records 'data' is not a list"):
        read_rest("orders", source(api.url(), records="data"), connections(tmp_path))


def test_a_wrong_records_path_fails_at_extract_naming_the_path_and_the_keys(
    api: FakeApi, tmp_path: Path
) -> None:
    """Not later, at the load, with an SQL error about a table with no columns."""
    api.queue(Reply(body={"data": {"items": rows(1, 2)}, "meta": {"page": 1}}))
    with pytest.raises(PermanentError) as info:
        read_rest("orders", source(api.url(), records="data.records"), connections(tmp_path))
    message = str(info.value)
    assert "records path 'data.records' is not in the response of GET" in message
    assert "no key 'records' at data; keys there: items" in message
    assert "set records: to the dot path of the list of records" in message
    assert "1.5" not in message  # keys only, never values


def test_a_later_page_without_the_records_path_ends_the_data(api: FakeApi, tmp_path: Path) -> None:
    api.queue(Reply(body={"data": rows(1, 2)}), Reply(body={"error": "no more pages"}))
    src = source(api.url(), records="data", pagination={"type": "page", "param": "page"})
    assert ids(read_rest("orders", src, connections(tmp_path)).frame) == [1, 2]


# ------------------------------------------------------------------ auth


def test_auth_header_is_bearer_token(api: FakeApi, tmp_path: Path) -> None:
    api.queue(Reply(body=rows(1)))
    conns = connections(tmp_path)
    src = source(api.url(), headers={"Accept": "application/json"})

    read_rest("orders", src, conns)

    assert api.hits[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert api.hits[0].headers["accept"] == "application/json"
    assert TOKEN in conns.secrets  # handed out, so run records can redact it


def test_auth_custom_header_without_scheme(api: FakeApi, tmp_path: Path) -> None:
    api.queue(Reply(body=rows(1)))
    src = RestSource.model_validate(
        {"kind": "rest", "url": api.url(), "auth": {"header": "X-Api-Key", "scheme": None, "token": TOKEN}}
    )
    read_rest("orders", src, connections(tmp_path))
    assert api.hits[0].headers["x-api-key"] == TOKEN
    assert "authorization" not in api.hits[0].headers


@pytest.mark.parametrize("status", [401, 403, 404, 400])
def test_4xx_is_permanent_after_one_request_without_the_token(
    api: FakeApi, tmp_path: Path, status: int
) -> None:
    api.queue(*[Reply(status, {"error": f"nope, {TOKEN} is not valid"})] * 3)
    reader = RestReader("orders", source(api.url(), max_retries=4, backoff=0.01), connections(tmp_path))

    with pytest.raises(PermanentError) as info:
        reader.records()

    assert len(api.hits) == 1
    assert reader.requests == 1 and reader.retries == 0
    assert api.hits[0].headers["authorization"] == f"Bearer {TOKEN}"
    message = str(info.value)
    assert "source orders" in message
    assert f"HTTP {status}" in message
    assert TOKEN not in message
    if status in (401, 403):
        assert "check the token" in (info.value.hint or "")


def test_401_through_read_rest_is_permanent(api: FakeApi, tmp_path: Path) -> None:
    api.queue(Reply(401, {"error": "bad token"}), Reply(body=rows(1)))
    with pytest.raises(PermanentError, match=r"source orders: GET .*/orders answered HTTP 401") as info:
        read_rest("orders", source(api.url()), connections(tmp_path))
    assert TOKEN not in str(info.value)
    assert len(api.hits) == 1


# ------------------------------------------------------------------ request-level retries


def test_503_is_retried_honouring_retry_after(api: FakeApi, tmp_path: Path) -> None:
    api.queue(
        Reply(503, {"error": "busy"}),
        Reply(503, {"error": "busy"}, headers={"Retry-After": "1"}),
        Reply(body={"data": rows(1, 2, 3)}),
    )
    src = source(api.url(), records="data", max_retries=3, backoff=0.05)

    started = time.monotonic()
    result = read_rest("orders", src, connections(tmp_path))
    elapsed = time.monotonic() - started

    assert ids(result.frame) == [1, 2, 3]
    assert result.metrics == {"http_requests": 3, "http_retries": 2, "http_retry_statuses": [503, 503]}
    assert len(api.hits) == 3
    first_gap, second_gap = (api.hits[1].at - api.hits[0].at), (api.hits[2].at - api.hits[1].at)
    assert 0.05 <= first_gap < 0.9  # the backoff, not Retry-After
    assert second_gap >= 1.0  # Retry-After: 1
    assert elapsed >= 1.05
    assert all(h.headers["authorization"] == f"Bearer {TOKEN}" for h in api.hits)


def test_429_is_retried_with_backoff(api: FakeApi, tmp_path: Path) -> None:
    api.queue(
        Reply(429, {"error": "slow down"}),
        Reply(429, {"error": "slow down"}, {"Retry-After": "0"}),
        Reply(body=rows(5)),
    )
    src = source(api.url(), max_retries=2, backoff=0.3)

    result = read_rest("orders", src, connections(tmp_path))

    assert ids(result.frame) == [5]
    assert result.metrics == {"http_requests": 3, "http_retries": 2, "http_retry_statuses": [429, 429]}
    assert api.hits[1].at - api.hits[0].at >= 0.3  # no Retry-After: the backoff
    assert api.hits[2].at - api.hits[1].at < 0.25  # Retry-After: 0 wins over the doubled backoff (0.6)


def test_retries_that_run_out_raise_transient(api: FakeApi, tmp_path: Path) -> None:
    api.queue(*[Reply(503, {"error": "down"}, {"Retry-After": "0"})] * 4)
    reader = RestReader("orders", source(api.url(), max_retries=2, backoff=0.01), connections(tmp_path))

    with pytest.raises(TransientError) as info:
        reader.records()

    assert len(api.hits) == 3
    assert (reader.requests, reader.retries, reader.retry_statuses) == (3, 2, [503, 503])
    assert "source orders" in str(info.value)
    assert "failed after 3 request(s): HTTP 503" in str(info.value)
    assert info.value.retry_after == 0.0
    assert TOKEN not in str(info.value)


def test_network_error_is_retried_then_transient(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reader = RestReader(
        "orders",
        source(f"http://127.0.0.1:{port}/orders", max_retries=1, backoff=0.01),
        connections(tmp_path),
    )

    with pytest.raises(TransientError, match=r"failed after 2 request\(s\): ConnectError") as info:
        reader.records()

    assert (reader.requests, reader.retries, reader.retry_statuses) == (2, 1, [])
    assert TOKEN not in str(info.value)


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(" 2 ") == 2.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


# ------------------------------------------------------------------ through the Prefect flow

SPEC = """\
name: api_orders
sources:
  orders:
    kind: rest
    url: {url}
    auth: {{token: "${{ORDERS_TOKEN}}"}}
    records: data
    pagination: {{type: page, param: page}}
    max_retries: 0
steps:
  - {{name: extract_orders, type: extract, source: orders}}
  - name: load_orders
    type: load
    depends_on: [extract_orders]
    destination: {{table: orders, mode: upsert, primary_key: [id]}}
retry: {{attempts: 3, delay: 0.4, backoff: 3}}
"""


def write_spec(spec_dir: Path, api: FakeApi) -> None:
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "api_orders.yaml").write_text(SPEC.format(url=api.url()))


def step(store: Store, run_id: str, name: str) -> dict[str, Any]:
    matches = [s for s in store.steps(run_id) if s["step_name"] == name]
    assert len(matches) == 1, matches
    return matches[0]


@pytest.mark.prefect
def test_flow_retries_transient_503_with_backoff_and_records_it(
    prefect_api: str, hw_env: Settings, spec_dir: Path, api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_TOKEN", TOKEN)
    served = rows(3, 1, 2)

    def respond(hit: Hit) -> Reply:
        if len(api.hits) <= 2:
            return Reply(503, {"error": "warming up"})
        return Reply(body={"data": served if hit.query["page"] == "1" else []})

    api.respond = respond
    write_spec(spec_dir, api)

    summary = run_flow("api_orders", spec_dir)

    assert summary["status"] == "completed", summary
    assert summary["retry_count"] == 2
    assert summary["records_processed"] == 3
    assert summary["records_loaded"] == 3
    # attempts 1 and 2 get 503 for page 1 (max_retries: 0, so each attempt is a single request);
    # attempt 3 reads page 1 and the empty page 2
    assert [h.query for h in api.hits] == [{"page": "1"}] * 3 + [{"page": "2"}]
    assert all(h.headers["authorization"] == f"Bearer {TOKEN}" for h in api.hits)
    first_gap, second_gap = (api.hits[1].at - api.hits[0].at), (api.hits[2].at - api.hits[1].at)
    assert first_gap >= 0.4  # delay
    assert second_gap >= 1.2  # delay * backoff
    # the backoff shows although a retry's own start-up varies (up to ~0.5 s on a loaded machine)
    assert second_gap > first_gap

    store = Store(hw_env.database_url)
    try:
        run = store.run(summary["run_id"])
        assert run is not None
        assert (run["status"], run["retry_count"], run["failed_step"]) == ("completed", 2, None)
        extract = step(store, summary["run_id"], "extract_orders")
        assert (extract["status"], extract["attempts"], extract["retry_count"]) == ("completed", 3, 2)
        assert extract["records_out"] == 3
        # the metrics are those of the successful attempt
        assert extract["metrics"] == {"http_requests": 2, "http_retries": 0, "http_retry_statuses": []}
        load = step(store, summary["run_id"], "load_orders")
        assert (load["status"], load["attempts"], load["retry_count"]) == ("completed", 1, 0)
    finally:
        store.dispose()

    engine = sa.create_engine(hw_env.warehouse_url)
    try:
        loaded = pl.read_database("SELECT id, amount FROM orders ORDER BY id", engine)
    finally:
        engine.dispose()
    assert_frame_equal(loaded, pl.DataFrame(rows(1, 2, 3)))


@pytest.mark.prefect
def test_flow_does_not_retry_permanent_401(
    prefect_api: str, hw_env: Settings, spec_dir: Path, api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_TOKEN", TOKEN)
    api.queue(*[Reply(401, {"error": "invalid token"})] * 3)
    write_spec(spec_dir, api)

    summary = run_flow("api_orders", spec_dir)

    assert summary["status"] == "failed"
    assert summary["failed_step"] == "extract_orders"
    assert summary["error_type"] == "PermanentError"
    assert "HTTP 401" in summary["error_message"]
    assert TOKEN not in summary["error_message"]
    assert summary["retry_count"] == 0
    assert len(api.hits) == 1
    assert api.hits[0].headers["authorization"] == f"Bearer {TOKEN}"

    store = Store(hw_env.database_url)
    try:
        run = store.run(summary["run_id"])
        assert run is not None
        assert (run["status"], run["failed_step"], run["error_type"]) == (
            "failed",
            "extract_orders",
            "PermanentError",
        )
        assert run["retry_count"] == 0
        assert TOKEN not in (run["error_message"] or "")
        extract = step(store, summary["run_id"], "extract_orders")
        assert (extract["status"], extract["attempts"], extract["retry_count"]) == ("failed", 1, 0)
        assert extract["error_type"] == "PermanentError"
        assert "source orders" in extract["error_message"] and "HTTP 401" in extract["error_message"]
        assert TOKEN not in extract["error_message"]
        assert step(store, summary["run_id"], "load_orders")["status"] == "skipped"
    finally:
        store.dispose()

    engine = sa.create_engine(hw_env.warehouse_url)
    try:
        assert not sa.inspect(engine).has_table("orders")
    finally:
        engine.dispose()
