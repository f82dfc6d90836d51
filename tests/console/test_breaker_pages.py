"""The console shows graceful degradation: a run that loaded its last good data says so on the run
page (which step, how old, which breaker), the run list has its data age, and the overview lists the
open circuit breaker. Through AppTest, against a store filled by really running a pipeline whose
REST source (a local HTTP server) goes down.

Real services: SQLite store/warehouse of `hw_env`, a local HTTP server (tests.test_extract_rest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headwater.access import login
from headwater.access.users import add_user
from headwater.settings import Settings
from tests.conftest import REPO
from tests.console.conftest import PASSWORD
from tests.test_breakers import Clock, run_once, write_spec
from tests.test_extract_rest import FakeApi, Reply
from tests.test_extract_rest import api as rest_api

# the fixture `api`: a local HTTP server that serves scripted replies and logs every request
api = rest_api


def test_run_page_and_overview_show_stale_data_and_open_breakers(
    hw_env: Settings,
    tmp_path: Path,
    api: FakeApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hw_env.ensure_home()
    monkeypatch.delenv("HEADWATER_ALERTS", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    folder = tmp_path / "specs"
    write_spec(folder, "orders_feed", api.url(), open_for="1h")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    api.respond = lambda hit: Reply(200, [{"id": 1, "amount": 2.5}, {"id": 2, "amount": 4.0}])
    run_once(hw_env, folder, "orders_feed", Clock(start))[1].dispose()
    api.respond = lambda hit: Reply(503, {})
    for i in range(1, 6):
        run_once(hw_env, folder, "orders_feed", Clock(start + timedelta(seconds=i)))[1].dispose()
    stale_at = start + timedelta(seconds=330)
    outcome, store = run_once(hw_env, folder, "orders_feed", Clock(stale_at))
    assert outcome.status == "completed_with_warnings" and len(api.hits) == 6

    from streamlit.testing.v1 import AppTest

    now = datetime.now(UTC)
    add_user(store.engine, "analyst", "data_analyst", PASSWORD, now)
    at = AppTest.from_file(str(REPO / "console" / "streamlit_app.py"), default_timeout=60)
    at.session_state["hw_token"] = login(store.engine, "analyst", PASSWORD, now)
    at.run()
    at.switch_page("app_pages/run.py")
    at.query_params["id"] = outcome.run_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    key = f"rest:http://127.0.0.1:{api.port}"
    (stale,) = [e.value for e in at.error if "Stale data" in e.value]
    # 330 s between the kept extract (run 1) and this run, shown as the console shows durations
    assert "step **extract_orders** loaded its last good extract of" in stale
    assert f"(2 rows, {330 / 60:.1f} min old)" in stale and f"circuit breaker `{key}`" in stale
    at.multiselect(key="runs_table_columns").select("stale data age (s)").run()
    listed = next(df.value for df in at.dataframe if "stale data age (s)" in df.value.columns)
    ages = dict(zip(listed["run"], listed["stale data age (s)"], strict=True))
    assert float(ages[outcome.run_id[:8]]) == 330.0  # the other runs show "—" (fresh, or failed)
    assert {str(a) for r, a in ages.items() if r != outcome.run_id[:8]} == {"—"}

    at.switch_page("app_pages/overview.py").run()
    assert not at.exception, [e.value for e in at.exception]
    (panel,) = [m.value for m in at.markdown if key in m.value and "power_off" in m.value]
    (health,) = [m.value for m in at.markdown if "**Circuit breakers**" in m.value]
    assert "degraded" in health and f"{key} open until" in health  # named in the health panel too
    opened = start + timedelta(seconds=5)
    assert f"open since {opened.isoformat()}, until {(opened + timedelta(hours=1)).isoformat()}" in panel
    assert "5 failure(s)" in panel
    store.dispose()
