"""The SLAs page through AppTest, on a store of its own (no Prefect: the page reads the store and the
specs): its table is the domain's report, and the days it names as missed are the days the history
was written to miss."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from headwater.access import login
from headwater.access.users import add_user
from headwater.settings import Settings
from headwater.sla import attainment_frame, sla_report
from headwater.spec.loader import load_pipeline
from headwater.store import Store
from tests.golden import APP, PASSWORD
from tests.sla_history import add_pipeline, add_run

SPEC = """\
name: daily
sources: {s: {kind: file, path: x.csv}}
steps: [{name: e, type: extract, source: s}]
sla: {success_rate: 90, window: 7d, deadline: "23:59", timezone: UTC}
"""
FAILED_DAYS_BACK = (3, 5)


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Settings, list[str]]:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "daily.yaml").write_text(SPEC)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HEADWATER_DATABASE_URL", raising=False)
    monkeypatch.delenv("HEADWATER_ALERTS", raising=False)
    monkeypatch.setenv("HEADWATER_PIPELINES", str(folder))
    settings = Settings.from_env()
    settings.ensure_home()
    store = Store(settings.database_url).migrate()
    today = datetime.now(UTC).date()
    pid = add_pipeline(store.engine, "daily")
    for back in range(9, 0, -1):
        start = datetime.combine(today - timedelta(days=back), time(0, 30), UTC)
        status = "failed" if back in FAILED_DAYS_BACK else "completed"
        add_run(store.engine, pid, "daily", f"r{back}", status, start, start + timedelta(minutes=10))
    now = datetime.now(UTC)
    add_user(store.engine, "eng", "data_engineer", PASSWORD, now)
    token = login(store.engine, "eng", PASSWORD, now)
    store.dispose()

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["hw_token"] = token
    at.run()
    missed = [(today - timedelta(days=b)).isoformat() for b in sorted(FAILED_DAYS_BACK, reverse=True)]
    return at, settings, missed


def test_sla_page_shows_the_report_and_the_missed_days(page: tuple[Any, Settings, list[str]]) -> None:
    at, settings, missed = page
    at.switch_page("app_pages/sla.py").run()
    at.number_input(key="sla_days").set_value(10).run()
    assert not at.exception, [e.value for e in at.exception]

    shown = next(d.value for d in at.dataframe if "objective" in d.value.columns).set_index("objective")
    spec = load_pipeline(Path(settings.pipelines_dir) / "daily.yaml", check=False).spec
    expected = attainment_frame(
        sla_report(Store(settings.database_url).engine, [spec], datetime.now(UTC), 10)
    )
    for row in expected.iter_rows(named=True):
        assert shown.loc[row["objective"], "attainment (%)"] == pytest.approx(row["attainment"])
        assert shown.loc[row["objective"], "days met"] == row["days_met"]
        assert shown.loc[row["objective"], "missed days"] == row["missed_days"]
    # written to miss: the days with only a failed run; the first day (before the first run) is not measured
    assert shown.loc["deadline", "missed days"] == ", ".join(missed)
    assert (shown.loc["deadline", "days measured"], shown.loc["deadline", "days met"]) == (9, 7)
    assert {m.label: m.value for m in at.metric}["Pipelines with an SLA"] == "1"
