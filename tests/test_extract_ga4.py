"""GA4 sources against a local runReport-compatible server (tests/ga4_server.py: the documented
request/response shapes, a real JWT-bearer token exchange signed by google-auth, bearer tokens checked
on every report): paging by offset/limit, a 429 retried after its Retry-After and recorded, types
from the metric headers, incremental days by a watermark, and errors with their fix.

Real services: the local GA4 server on 127.0.0.1 (every test); the real PostgreSQL (the example
pipeline's warehouse, marked `postgres`); the Prefect test harness with a saved block (marked
`prefect`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from headwater.cli import main
from headwater.connections import Connections
from headwater.errors import PermanentError, SpecError, TransientError
from headwater.extract.ga4 import column_name, read_ga4, report_range
from headwater.pipeline import PipelineRun
from headwater.pipeline.driver import SequentialExecutor, execute
from headwater.settings import Settings
from headwater.spec.loader import find_pipeline, load_pipeline
from headwater.spec.models import Ga4Source
from headwater.store import Store
from headwater.views.runs import request_retries
from tests.conftest import EXAMPLES
from tests.ga4_server import METRIC_TYPES, Fault, Ga4Api, Ga4Server, ServiceAccountKey, make_rows, quota_error

PROPERTY = "123456789"
TZ = "America/New_York"
EXAMPLE_METRICS = ["activeUsers", "sessions", "screenPageViews", "averageSessionDuration", "purchaseRevenue"]


@pytest.fixture(scope="module")
def key() -> ServiceAccountKey:
    return ServiceAccountKey.generate()


def yesterday(tz: str = TZ) -> date:
    return datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo(tz)).date() - timedelta(days=1)


@pytest.fixture
def ga4(key: ServiceAccountKey) -> Iterator[Ga4Api]:
    """Ten days of rows up to yesterday (in the property's time zone): 9 countries x 3 devices a day."""
    last = yesterday()
    days = [last - timedelta(days=i) for i in range(9, -1, -1)]
    with Ga4Server(key, make_rows(days), PROPERTY, TZ) as api:
        yield api


def source(api: Ga4Api, key: ServiceAccountKey, **over: Any) -> Ga4Source:
    fields: dict[str, Any] = {
        "kind": "ga4",
        "property": PROPERTY,
        "timezone": TZ,
        "dimensions": ["date", "country", "deviceCategory"],
        "metrics": list(METRIC_TYPES),
        "credentials": {"credentials_json": json.dumps(key.info(api.token_uri))},
        "endpoint": api.base_url,
        "backoff": 0.05,
    }
    return Ga4Source.model_validate({**fields, **over})


def expected(api: Ga4Api, first: date, last: date, metrics: list[str]) -> pl.DataFrame:
    """The server's raw rows for those days, as plain Polars: snake_case names, sorted by the dims."""
    rows = [r for r in api.rows if first <= r["date"] <= last]
    frame = pl.DataFrame(rows).select(["date", "country", "deviceCategory", *metrics])
    frame = frame.sort(["date", "country", "deviceCategory"])
    return frame.rename({c: column_name(c, True) for c in frame.columns})


# ------------------------------------------------------------------ the extract


def test_three_pages_and_a_429_read_exactly_once(ga4: Ga4Api, key: ServiceAccountKey, tmp_path: Path) -> None:
    """27 rows in pages of 10: offsets 0, 10, 20; the first request for offset 10 gets 429 with
    Retry-After: 1, which is waited out and retried once."""
    day = yesterday()
    ga4.fail(10, Fault(429, {"Retry-After": "1"}, quota_error("Exhausted concurrent requests quota.")))
    src = source(ga4, key, page_size=10, date_range={"start_date": "yesterday", "end_date": "yesterday"})
    result = read_ga4("ga4", src, Connections("sqlite://"), tmp_path)

    assert_frame_equal(result.frame, expected(ga4, day, day, list(METRIC_TYPES)))
    assert result.frame.schema == pl.Schema(
        {
            "date": pl.Date,
            "country": pl.String,
            "device_category": pl.String,
            "active_users": pl.Int64,
            "sessions": pl.Int64,
            "screen_page_views": pl.Int64,
            "average_session_duration": pl.Float64,
            "purchase_revenue": pl.Float64,
            "engagement_rate": pl.Float64,
        }
    )
    assert [(c.body["offset"], c.body["limit"], c.status) for c in ga4.calls] == [
        (0, 10, 200),
        (10, 10, 429),
        (10, 10, 200),
        (20, 10, 200),
    ]
    assert ga4.calls[2].at - ga4.calls[1].at >= 0.95  # Retry-After: 1 honoured
    assert ga4.token_requests == 1  # one token for the whole report
    assert all(
        c.body["dateRanges"] == [{"startDate": "yesterday", "endDate": "yesterday"}] for c in ga4.calls
    )
    assert ga4.calls[0].body["orderBys"] == [
        {"dimension": {"dimensionName": d}} for d in ["date", "country", "deviceCategory"]
    ]
    waited = result.metrics.pop("http_retry_wait_seconds")
    assert 0.95 <= waited <= 1.5
    assert result.metrics == {
        "http_requests": 4,
        "http_retries": 1,
        "http_retry_statuses": [429],
        "ga4_dates": "yesterday..yesterday",
        "ga4_pages": 3,
        "ga4_row_count": 27,
        "ga4_time_zone": TZ,
        "ga4_tokens_per_day_remaining": 200_000 - 30,
    }
    assert result.watermark is None  # not incremental


def test_incremental_reads_from_the_day_after_the_watermark(
    ga4: Ga4Api, key: ServiceAccountKey, tmp_path: Path
) -> None:
    last = yesterday()
    src = source(ga4, key, incremental={"initial": "3daysAgo"}, metrics=["sessions"])
    first = read_ga4("ga4", src, Connections("sqlite://"), tmp_path)
    assert_frame_equal(first.frame, expected(ga4, last - timedelta(days=2), last, ["sessions"]))
    assert first.watermark == last
    assert ga4.calls[0].body["dateRanges"] == [
        {"startDate": (last - timedelta(days=2)).isoformat(), "endDate": last.isoformat()}
    ]
    # the next run the same day: nothing to ask for, no request, the watermark stays
    again = read_ga4("ga4", src, Connections("sqlite://"), tmp_path, watermark=last)
    assert (again.frame.height, again.watermark, len(ga4.calls)) == (0, None, 1)
    assert again.frame.columns == ["date", "country", "device_category", "sessions"]
    # a missed day: the watermark two days back reads only yesterday (with lookback 1: two days)
    missed = read_ga4("ga4", src, Connections("sqlite://"), tmp_path, watermark=last - timedelta(days=1))
    assert_frame_equal(missed.frame, expected(ga4, last, last, ["sessions"]))
    back = source(ga4, key, incremental={"initial": "3daysAgo", "lookback_days": 1}, metrics=["sessions"])
    two = read_ga4("ga4", back, Connections("sqlite://"), tmp_path, watermark=last - timedelta(days=1))
    assert_frame_equal(two.frame, expected(ga4, last - timedelta(days=1), last, ["sessions"]))


def test_report_range_uses_the_property_time_zone() -> None:
    src = Ga4Source.model_validate(
        {
            "kind": "ga4",
            "property": "1",
            "timezone": "America/Los_Angeles",
            "dimensions": ["date"],
            "metrics": ["sessions"],
            "credentials": {"block": "x"},
            "incremental": {"initial": "2daysAgo"},
        }
    )
    # 03:00 UTC on 4 Dec is still 3 Dec in Los Angeles: yesterday there is 2 Dec
    now = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
    assert report_range(src, None, now) == ("2026-12-01", "2026-12-02")
    assert report_range(src, date(2026, 11, 28), now) == ("2026-11-29", "2026-12-02")
    assert report_range(src, date(2026, 12, 2), now) is None
    assert report_range(src, date(2026, 12, 2), datetime(2026, 12, 4, 9, 0, tzinfo=UTC)) == (
        "2026-12-03",
        "2026-12-03",
    )


def test_empty_report_is_typed_by_its_headers(ga4: Ga4Api, key: ServiceAccountKey, tmp_path: Path) -> None:
    # a day with no data: GA4 leaves rows and rowCount out of the JSON
    src = source(ga4, key, date_range={"start_date": "2001-01-01", "end_date": "2001-01-02"})
    result = read_ga4("ga4", src, Connections("sqlite://"), tmp_path)
    assert result.frame.height == 0
    assert result.frame.schema["active_users"] == pl.Int64
    assert result.frame.schema["purchase_revenue"] == pl.Float64
    assert result.frame.schema["date"] == pl.Date
    assert (result.metrics["ga4_pages"], result.metrics["ga4_row_count"]) == (1, 0)


def test_429_until_the_retries_run_out_is_transient(
    ga4: Ga4Api, key: ServiceAccountKey, tmp_path: Path
) -> None:
    ga4.fail(0, *[Fault(429, {}, quota_error("Exhausted property tokens per hour."))] * 3)
    with pytest.raises(TransientError, match=r"after 3 request\(s\): HTTP 429 RESOURCE_EXHAUSTED") as info:
        read_ga4("ga4", source(ga4, key, max_retries=2), Connections("sqlite://"), tmp_path)
    assert "tokens per hour" in str(info.value)
    assert [c.status for c in ga4.calls] == [429, 429, 429]


def test_daily_quota_fails_at_once_with_the_fix(ga4: Ga4Api, key: ServiceAccountKey, tmp_path: Path) -> None:
    ga4.fail(0, Fault(429, {}, quota_error("Exhausted property tokens per day for this property.")))
    with pytest.raises(PermanentError, match="spent its daily quota") as info:
        read_ga4("ga4", source(ga4, key), Connections("sqlite://"), tmp_path)
    assert "midnight Pacific time" in str(info.value.hint)
    assert len(ga4.calls) == 1


def test_no_access_names_the_service_account(ga4: Ga4Api, key: ServiceAccountKey, tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="answered HTTP 403") as info:
        read_ga4("ga4", source(ga4, key, property="42"), Connections("sqlite://"), tmp_path)
    assert "headwater-sync@hw-test-project.iam.gserviceaccount.com" in str(info.value.hint)
    assert "Viewer" in str(info.value.hint)
    with pytest.raises(PermanentError, match="not a valid metric") as bad:
        read_ga4("ga4", source(ga4, key, metrics=["visits"]), Connections("sqlite://"), tmp_path)
    assert "API names" in str(bad.value.hint)


def test_a_key_google_refuses_is_permanent_and_never_repeated(
    ga4: Ga4Api, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = ServiceAccountKey.generate()  # signed by a key the server does not know
    connections = Connections("sqlite://")
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentError, match="refused the service account"):
        read_ga4("ga4", source(ga4, other), connections, tmp_path)
    private = other.info(ga4.token_uri)["private_key"]
    assert private in connections.secrets  # masked wherever the run redacts messages
    assert "PRIVATE KEY" not in caplog.text
    with pytest.raises(PermanentError, match="not a service-account key") as info:
        read_ga4(
            "ga4",
            source(ga4, other, credentials={"credentials_json": '{"type": "user", "token": "s3cr3t-value"}'}),
            Connections("sqlite://"),
            tmp_path,
        )
    assert "s3cr3t-value" not in str(info.value)
    assert ga4.calls == []


def test_key_file_relative_to_the_spec(ga4: Ga4Api, key: ServiceAccountKey, tmp_path: Path) -> None:
    (tmp_path / "key.json").write_text(json.dumps(key.info(ga4.token_uri)))
    src = source(ga4, key, credentials={"key_file": "key.json"}, metrics=["sessions"])
    day = yesterday()
    assert_frame_equal(
        read_ga4("ga4", src, Connections("sqlite://"), tmp_path).frame, expected(ga4, day, day, ["sessions"])
    )
    with pytest.raises(PermanentError, match="cannot read the GA4 key file"):
        read_ga4(
            "ga4", source(ga4, key, credentials={"key_file": "nope.json"}), Connections("sqlite://"), tmp_path
        )


SPEC = """
name: bad
sources:
  ga4:
    kind: ga4
    property: "1"
    dimensions: [country]
    metrics: [sessions]
    {extra}
steps:
  - {{name: e, type: extract, source: ga4}}
  - {{name: l, type: load, depends_on: [e], destination: {{table: t}}}}
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            'credentials: {credentials_json: \'{"not": "from env"}\'}',
            "sources.ga4.credentials.credentials_json: a secret is written as a literal",
        ),
        (
            "credentials: {block: b, key_file: k.json}",
            "give exactly one of credentials_json, key_file or block",
        ),
        (
            "credentials: {block: b}\n    date_range: {start_date: last week}",
            "start_date: 'last week' is not a GA4 date (fix: write today, yesterday, NdaysAgo",
        ),
        (
            "credentials: {block: b}\n    incremental: {initial: 3daysAgo}",
            "an incremental GA4 source needs the `date` dimension",
        ),
        ("credentials: {block: b}\n    timezone: Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_spec_checks(tmp_path: Path, extra: str, message: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.format(extra=extra))
    with pytest.raises(SpecError) as info:
        load_pipeline(spec)
    assert message in str(info.value)


# ------------------------------------------------------------------ the example pipeline


def example_spec(folder: Path, api: Ga4Api, page_size: int, credentials: str | None = None) -> Path:
    """pipelines/ga4_daily_sync.yaml as shipped, pointed at the local server."""
    text = (EXAMPLES / "ga4_daily_sync.yaml").read_text()
    text = text.replace("    page_size: 10000", f"    page_size: {page_size}\n    endpoint: {api.base_url}")
    if credentials is not None:
        text = text.replace("credentials: {block: ga4-service-account}", credentials)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ga4_daily_sync.yaml"
    path.write_text(text)
    return path


def warehouse_rows(url: str) -> pl.DataFrame:
    engine = sa.create_engine(url)
    try:
        return pl.read_database(
            "SELECT date, country, device_category, active_users, sessions, screen_page_views, "
            "average_session_duration, purchase_revenue FROM ga4_daily "
            "ORDER BY date, country, device_category",
            engine,
        )
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_example_daily_sync_on_postgres(
    ga4: Ga4Api,
    key: ServiceAccountKey,
    hw_env: Settings,
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The shipped example, its warehouse on PostgreSQL: the day's 27 rows over 3 pages with a 429
    on page 2 load exactly; the step records the retry; the watermark is yesterday; a second run the
    same day asks GA4 nothing and changes nothing."""
    monkeypatch.setenv("HEADWATER_WAREHOUSE_URL", pg_url)
    monkeypatch.setenv("GA4_CREDENTIALS_JSON", json.dumps(key.info(ga4.token_uri)))
    folder = tmp_path / "specs"
    example_spec(folder, ga4, 10, 'credentials: {credentials_json: "${GA4_CREDENTIALS_JSON}"}')
    ga4.fail(10, Fault(429, {"Retry-After": "1"}, quota_error("Exhausted concurrent requests quota.")))
    settings = Settings.from_env()
    settings.ensure_home()
    store = Store(settings.database_url).migrate()
    try:
        summaries, ids = [], []
        for _ in range(2):
            run = PipelineRun(find_pipeline(folder, "ga4_daily_sync"), store, Connections(pg_url))
            run.start()
            summaries.append(run.outcome(execute(run, SequentialExecutor())).summary)
            ids.append(run.run_id)
            run.connections.dispose()
        first, second = summaries
        assert (first.status, first.records_loaded, first.records_inserted) == ("completed", 27, 27)
        day = yesterday()
        want = expected(ga4, day, day, EXAMPLE_METRICS)
        assert_frame_equal(warehouse_rows(pg_url), want, check_dtypes=False)
        steps = {s["step_name"]: s for s in store.steps(ids[0])}
        metrics = steps["extract_ga4"]["metrics"]
        assert (metrics["http_requests"], metrics["http_retries"], metrics["http_retry_statuses"]) == (
            4,
            1,
            [429],
        )
        assert (metrics["ga4_pages"], metrics["ga4_row_count"]) == (3, 27)
        assert metrics["ga4_dates"] == f"{day.isoformat()}..{day.isoformat()}"
        assert steps["load_ga4_daily"]["metrics"]["watermarks"] == {"ga4": day.isoformat()}
        # `headwater runs --run` says what the requests went through
        waited = metrics["http_retry_wait_seconds"]
        note = f"extract_ga4: retried 1 time after HTTP 429 (4 requests, waited {waited:.1f} s)"
        assert request_retries(metrics) == note.removeprefix("extract_ga4: ")
        capsys.readouterr()
        assert main(["runs", "--run", ids[0]]) == 0
        assert f"  {note}" in capsys.readouterr().out.splitlines()
        # the token and the key never reach the store
        dumped = json.dumps([store.run(ids[0]), list(steps.values())], default=str)
        assert "ya29.test-" not in dumped and "PRIVATE KEY" not in dumped
        assert (second.status, second.records_loaded, second.records_inserted) == ("completed", 0, 0)
        assert len(ga4.calls) == 4  # the second run asked nothing: yesterday is loaded
        again = {s["step_name"]: s for s in store.steps(ids[1])}
        assert again["extract_ga4"]["metrics"] == {"ga4_up_to_date": day.isoformat(), "http_requests": 0}
        assert warehouse_rows(pg_url).height == 27
    finally:
        store.dispose()


@pytest.mark.prefect
def test_example_through_the_flow_with_a_block(
    prefect_api: str, ga4: Ga4Api, key: ServiceAccountKey, hw_env: Settings, tmp_path: Path
) -> None:
    """The Prefect flow loads the saved Ga4ServiceAccount block and hands the key down; the run
    record carries the retried 429."""
    from blocks import Ga4ServiceAccount
    from tests.conftest import run_flow

    Ga4ServiceAccount(key_json=json.dumps(key.info(ga4.token_uri))).save(
        "ga4-service-account", overwrite=True
    )
    folder = tmp_path / "specs"
    example_spec(folder, ga4, 10)
    ga4.fail(20, Fault(503, {}, {"error": {"code": 503, "status": "UNAVAILABLE", "message": "try again"}}))
    summary = run_flow("ga4_daily_sync", folder)
    assert (summary["status"], summary["records_loaded"]) == ("completed", 27), summary
    store = Store(hw_env.database_url)
    try:
        steps = {s["step_name"]: s for s in store.steps(summary["run_id"])}
    finally:
        store.dispose()
    assert steps["extract_ga4"]["metrics"]["http_retry_statuses"] == [503]
    day = yesterday()
    assert_frame_equal(
        warehouse_rows(hw_env.warehouse_url), expected(ga4, day, day, EXAMPLE_METRICS), check_dtypes=False
    )
    # a block nobody saved (a pipeline of its own: nothing loaded yet): the run fails at the extract,
    # saying how to save it
    text = (folder / "ga4_daily_sync.yaml").read_text()
    text = text.replace("{block: ga4-service-account}", "{block: ga4-unsaved}")
    (folder / "ga4_daily_sync.yaml").write_text(text.replace("name: ga4_daily_sync", "name: ga4_unsaved"))
    failed = run_flow("ga4_unsaved", folder)
    assert (failed["status"], failed["failed_step"], failed["error_type"]) == (
        "failed",
        "extract_ga4",
        "PermanentError",
    )
    assert "GA4 service-account block 'ga4-unsaved' cannot be loaded" in failed["error_message"]
    assert "Ga4ServiceAccount" in failed["error_message"]


def test_validate_follows_the_report_columns(tmp_path: Path) -> None:
    spec = tmp_path / "cols.yaml"
    spec.write_text(
        SPEC.format(extra="credentials: {block: b}").replace(
            "  - {name: l,",
            "  - {name: v, type: validate, depends_on: [e], expect: [{name: r, rule: 'users >= 0'}]}\n"
            "  - {name: l,",
        )
    )
    with pytest.raises(SpecError) as info:
        load_pipeline(spec)
    assert "users" in str(info.value) and "country, sessions" in str(info.value)
    spec.write_text(spec.read_text().replace("users >= 0", "sessions >= 0"))
    assert load_pipeline(spec).spec.name == "bad"
