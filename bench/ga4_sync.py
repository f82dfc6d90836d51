"""A full daily GA4 sync of a realistic day against the local runReport server (tests/ga4_server.py):
100,002 rows (33,334 countries x 3 devices: far more rows than most properties' day) in pages of
10,000, through Headwater's extract and through the shipped example pipeline (extract, validate,
upsert into a throwaway PostgreSQL database), against a hand-written loop (google-auth token, httpx
POSTs paged by offset, a Polars frame from the rows) measured in the same run. Prints wall times
and ratios; the seed's target is a full daily sync in under 15 minutes.

    .venv/bin/python bench/ga4_sync.py [--rows 100000] [--page-size 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import polars as pl  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from headwater.connections import Connections  # noqa: E402
from headwater.extract.ga4 import read_ga4  # noqa: E402
from headwater.spec.models import Ga4Source  # noqa: E402
from tests.ga4_server import SCOPE, Ga4Server, ServiceAccountKey, make_rows  # noqa: E402

PG_ADMIN = os.environ.get("HEADWATER_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
TZ = "America/New_York"
METRICS = ["activeUsers", "sessions", "screenPageViews", "averageSessionDuration", "purchaseRevenue"]


def hand_written(info: dict[str, str], base_url: str, page_size: int) -> pl.DataFrame:
    """What one would write without Headwater: a token, then POST pages until rowCount."""
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    creds = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
    creds.refresh(Request())
    body = {
        "dateRanges": [{"startDate": "yesterday", "endDate": "yesterday"}],
        "dimensions": [{"name": d} for d in ("date", "country", "deviceCategory")],
        "metrics": [{"name": m} for m in METRICS],
        "orderBys": [{"dimension": {"dimensionName": d}} for d in ("date", "country", "deviceCategory")],
        "limit": page_size,
    }
    records, offset = [], 0
    with httpx.Client(timeout=60) as client:
        while True:
            resp = client.post(
                f"{base_url}/v1beta/properties/123456789:runReport",
                json={**body, "offset": offset},
                headers={"Authorization": f"Bearer {creds.token}"},
            )
            resp.raise_for_status()
            page = resp.json()
            rows = page.get("rows") or []
            for r in rows:
                d = [v["value"] for v in r["dimensionValues"]]
                m = [v["value"] for v in r["metricValues"]]
                records.append((d[0], d[1], d[2], int(m[0]), int(m[1]), int(m[2]), float(m[3]), float(m[4])))
            offset += len(rows)
            if not rows or offset >= int(page.get("rowCount", 0)):
                break
    frame = pl.DataFrame(
        records,
        schema=["date", "country", "device_category", *(m.lower() for m in METRICS)],
        orient="row",
    )
    return frame.with_columns(pl.col("date").str.strptime(pl.Date, "%Y%m%d"))


def full_sync(info: dict[str, str], base_url: str, page_size: int) -> tuple[float, dict[str, object]]:
    """The shipped example pipeline, pointed at the local server, into a throwaway PostgreSQL."""
    from headwater.pipeline import PipelineRun
    from headwater.pipeline.driver import SequentialExecutor, execute
    from headwater.settings import Settings
    from headwater.spec.loader import find_pipeline
    from headwater.store import Store

    name = f"hw_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "pipelines"
            folder.mkdir()
            text = (REPO / "pipelines" / "ga4_daily_sync.yaml").read_text()
            text = text.replace(
                "    page_size: 10000", f"    page_size: {page_size}\n    endpoint: {base_url}"
            )
            text = text.replace(
                "credentials: {block: ga4-service-account}",
                'credentials: {credentials_json: "${GA4_BENCH_KEY}"}',
            )
            (folder / "ga4_daily_sync.yaml").write_text(text)
            os.environ["GA4_BENCH_KEY"] = json.dumps(info)
            os.environ["HEADWATER_HOME"] = str(Path(tmp) / "home")
            settings = Settings.from_env()
            settings.ensure_home()
            store = Store(settings.database_url).migrate()
            start = time.perf_counter()
            run = PipelineRun(find_pipeline(folder, "ga4_daily_sync"), store, Connections(url))
            run.start()
            summary = run.outcome(execute(run, SequentialExecutor())).summary
            took = time.perf_counter() - start
            run.connections.dispose()
            store.dispose()
            with sa.create_engine(url).connect() as conn:
                loaded = conn.exec_driver_sql("SELECT count(*), sum(sessions) FROM ga4_daily").one()
        return took, {"status": summary.status, "rows": loaded[0], "sessions": loaded[1]}
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=10_000)
    args = parser.parse_args()
    day = datetime.now(ZoneInfo(TZ)).date() - timedelta(days=1)
    countries = tuple(f"C{i:06d}" for i in range(-(-args.rows // 3)))
    rows = make_rows([day], countries=countries)
    key = ServiceAccountKey.generate()
    with Ga4Server(key, rows, "123456789", TZ) as api:
        info = key.info(api.token_uri)
        source = Ga4Source.model_validate(
            {
                "kind": "ga4",
                "property": "123456789",
                "timezone": TZ,
                "dimensions": ["date", "country", "deviceCategory"],
                "metrics": METRICS,
                "credentials": {"credentials_json": json.dumps(info)},
                "endpoint": api.base_url,
                "page_size": args.page_size,
            }
        )
        hand_written(info, api.base_url, args.page_size)  # warm both paths (imports, server caches)
        read_ga4("ga4", source, Connections("sqlite://"), REPO, now=datetime.now(UTC))
        start = time.perf_counter()
        ours = read_ga4("ga4", source, Connections("sqlite://"), REPO, now=datetime.now(UTC)).frame
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        theirs = hand_written(info, api.base_url, args.page_size)
        t_theirs = time.perf_counter() - start
        same = ours.select("date", "country", "device_category", "sessions").sort(
            "country", "device_category"
        )
        assert same.equals(
            theirs.select("date", "country", "device_category", "sessions").sort("country", "device_category")
        ), "the two reads differ"
        t_sync, result = full_sync(info, api.base_url, args.page_size)
    truth = sum(r["sessions"] for r in rows)
    assert result == {"status": "completed", "rows": len(rows), "sessions": truth}, result
    pages = -(-len(rows) // args.page_size)
    print(f"GA4 day: {len(rows):,} rows in {pages} pages of {args.page_size:,} (local runReport server)")
    print(f"  Headwater extract (read_ga4)       {t_ours:7.2f} s   {len(rows) / t_ours:>10,.0f} rows/s")
    print(f"  hand-written httpx paging loop     {t_theirs:7.2f} s   {len(rows) / t_theirs:>10,.0f} rows/s")
    print(f"  ratio Headwater / hand-written     {t_ours / t_theirs:7.2f}")
    print(
        f"  full daily sync (example pipeline: extract, validate, upsert into PostgreSQL) "
        f"{t_sync:.2f} s = {t_sync / 900:.1%} of the 15-minute target; {result['rows']:,} rows loaded"
    )


if __name__ == "__main__":
    main()
