"""Every page, through AppTest, against a store the example pipelines really filled: the figures
each page shows equal what direct SQL over the store (and the warehouse) gives."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.console.conftest import Console, app

pytestmark = pytest.mark.prefect
OK = "('completed', 'completed_with_warnings')"


def metrics(at: Any) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def frame(at: Any, column: str) -> Any:
    """The first dataframe on the page with this column (pandas, as AppTest gives it)."""
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(
        f"no dataframe with a {column!r} column; have {[list(d.value.columns) for d in at.dataframe]}"
    )


def _text(sql: str, params: dict[str, Any]) -> Any:
    """Datetimes bound as timestamps with a time zone (SQLite stores them as naive UTC text)."""
    stmt = sa.text(sql)
    typed = [
        sa.bindparam(k, type_=sa.DateTime(timezone=True))
        for k, v in params.items()
        if isinstance(v, datetime)
    ]
    return stmt.bindparams(*typed) if typed else stmt


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(_text(sql, params), params).scalar()


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(_text(sql, params), params).all())


def as_json(value: Any) -> Any:
    """A JSON column as Python (SQLite's driver gives text, PostgreSQL's the value)."""
    return json.loads(value) if isinstance(value, str) else value


def clean(at: Any) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_sign_in_form(console: Console) -> None:
    at = app(console)
    assert at.title[0].value.endswith("Headwater")
    assert not at.metric
    at.text_input(key="login_user").input("engineer")
    at.text_input(key="login_password").input("wrong password here")
    at.button(key="login_submit").click().run()
    assert "wrong user name or password" in at.error[0].value
    at.text_input(key="login_password").input("console-test-Passw0rd")
    at.button(key="login_submit").click().run()
    clean(at)
    assert at.title[0].value == "Overview"
    assert (
        scalar(
            console.engine,
            "SELECT count(*) FROM audit_log "
            "WHERE action = 'login' AND username = 'engineer' AND outcome = 'denied'",
        )
        == 1
    )
    assert (
        scalar(
            console.engine,
            "SELECT count(*) FROM console_sessions s JOIN console_users u ON u.id = s.user_id "
            "WHERE u.username = 'engineer'",
        )
        == 2
    )


def test_overview_matches_the_store(console: Console) -> None:
    at = app(console, "data_analyst")
    clean(at)
    shown = metrics(at)
    e = console.engine
    since7 = datetime.now(UTC) - timedelta(days=7)
    since24 = datetime.now(UTC) - timedelta(hours=24)
    assert shown["Pipelines"] == str(scalar(e, "SELECT count(*) FROM data_pipelines WHERE is_active"))
    assert shown["Running now"] == str(
        scalar(e, "SELECT count(*) FROM pipeline_executions WHERE status = 'running'")
    )
    finished = scalar(
        e, "SELECT count(*) FROM pipeline_executions WHERE status <> 'running' AND started_at >= :s", s=since7
    )
    good = scalar(
        e, f"SELECT count(*) FROM pipeline_executions WHERE status IN {OK} AND started_at >= :s", s=since7
    )
    assert (finished, good) == (6, 5)
    assert shown["Success (7 d)"] == f"{100 * good / finished:.1f}%"
    assert shown["Failed (24 h)"] == str(
        scalar(
            e,
            "SELECT count(*) FROM pipeline_executions "
            "WHERE status IN ('failed', 'crashed') AND started_at >= :s",
            s=since24,
        )
    )
    latest = rows(
        e,
        "SELECT p.quality_score FROM pipeline_executions p "
        "WHERE p.quality_score IS NOT NULL AND p.started_at = "
        "(SELECT max(q.started_at) FROM pipeline_executions q "
        "WHERE q.pipeline_name = p.pipeline_name AND q.quality_score IS NOT NULL)",
    )
    # flights_daily and flights_clean carry suites; vendor_prices and claims_deidentified quick
    # `expect` rules, which count in the score too (vendor_prices' latest run failed unscored)
    assert len(latest) == 4
    assert shown["Quality score"] == f"{sum(r[0] for r in latest) / len(latest):.1f}"
    open_alerts = scalar(e, "SELECT count(*) FROM alert_instances WHERE status = 'open'")
    assert open_alerts == 2  # vendor_prices failed; flights_clean quarantined > 5%
    assert shown["Open alerts"] == str(open_alerts)
    health = {m.value.split("**")[1]: m.value for m in at.markdown if "**" in m.value and " — " in m.value}
    assert "ok" in health["Metadata store"] and "ok" in health["Warehouse"] and "ok" in health["Redis"]
    assert "not configured" in health["Prefect API"]
    failures = frame(at, "failed step")
    assert failures["pipeline"].tolist() == ["vendor_prices"]


def test_pipelines_page_matches_the_store(console: Console) -> None:
    at = app(console, "data_analyst")
    at.switch_page("app_pages/pipelines.py").run()
    clean(at)
    assert "tags" not in frame(at, "success rate").columns  # not among the columns shown at first
    at.multiselect(key="pipelines_table_columns").select("tags").select("owner").run()
    clean(at)
    table = frame(at, "success rate").set_index("name")
    e = console.engine
    expected = rows(
        e,
        "SELECT pipeline_name, count(*), 100.0 * sum(CASE WHEN status IN "
        + OK
        + " THEN 1 ELSE 0 END) / count(*), "
        "avg(CASE WHEN status IN "
        + OK
        + " THEN duration_seconds END) FROM pipeline_executions GROUP BY pipeline_name",
    )
    assert (
        sorted(table.index)
        == sorted(r[0] for r in expected)
        == sorted(
            ["flights_daily", "carrier_monthly", "flights_clean", "vendor_prices", "claims_deidentified"]
        )
    )
    for name, runs, rate, mean in expected:
        assert table.loc[name, "runs (30 d)"] == runs
        assert table.loc[name, "success rate"] == pytest.approx(float(rate), abs=0.01)
        assert table.loc[name, "mean duration (s)"] == pytest.approx(float(mean), abs=0.01)
    assert table.loc["vendor_prices", "last status"] == "failed"
    assert table.loc["vendor_prices", "success rate"] == 50.0
    assert table.loc["flights_daily", "schedule"] == "0 6 * * * (America/New_York)"
    tags = as_json(scalar(e, "SELECT tags FROM data_pipelines WHERE name = 'flights_daily'"))
    assert table.loc["flights_daily", "tags"] == ", ".join(tags) == "flights, daily, demo"
    # the next run of flights_daily: the next 06:00 in New York
    from zoneinfo import ZoneInfo

    ny = datetime.now(ZoneInfo("America/New_York"))
    nxt = ny.replace(hour=6, minute=0, second=0, microsecond=0)
    nxt = nxt if nxt > ny else nxt + timedelta(days=1)
    # carrier_monthly runs on a trigger, with no next run: the column is text, "—" there
    assert table.loc["carrier_monthly", "next run (UTC)"] == "—"
    assert table.loc["flights_daily", "next run (UTC)"] == nxt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_run_detail_matches_the_store(console: Console) -> None:
    e = console.engine
    run_id = scalar(e, "SELECT id FROM pipeline_executions WHERE pipeline_name = 'flights_clean'")
    at = app(console, "data_analyst")
    at.switch_page("app_pages/run.py")
    at.query_params["id"] = run_id
    at.run()
    clean(at)
    assert at.header[0].value == f"flights_clean · run {run_id[:8]}"
    run = rows(
        e,
        "SELECT records_processed, records_loaded, records_quarantined, quality_score "
        "FROM pipeline_executions WHERE id = :i",
        i=run_id,
    )[0]
    shown = metrics(at)
    assert shown["Read"] == f"{run[0]:,}"
    assert shown["Loaded"] == f"{run[1]:,}" == "280,481"
    assert shown["Quarantined"] == f"{run[2]:,}" == "56,295"
    assert shown["Quality score"] == f"{run[3]:.2f}"
    steps = frame(at, "records in")
    expected = rows(
        e,
        "SELECT step_name, records_in, records_out FROM step_executions WHERE execution_id = :i ORDER BY id",
        i=run_id,
    )
    assert steps["step"].tolist() == [r[0] for r in expected]
    assert [str(v) for v in steps["records out"]] == ["—" if r[2] is None else str(r[2]) for r in expected]
    checks = frame(at, "pass rate")
    expected_checks = rows(
        e,
        "SELECT rule_name, records_failed FROM data_quality_checks WHERE execution_id = :i ORDER BY id",
        i=run_id,
    )
    assert list(zip(checks["rule"], checks["failed"], strict=True)) == [tuple(r) for r in expected_checks]
    failing = [x.label for x in at.expander]
    assert any(label.endswith("tailnum_in_planes: 50,094 failing") for label in failing)


def test_failed_run_shows_the_error_and_retries(console: Console) -> None:
    e = console.engine
    run_id, step, error_type, retries = rows(
        e, "SELECT id, failed_step, error_type, retry_count FROM pipeline_executions WHERE status = 'failed'"
    )[0]
    at = app(console, "data_analyst")
    at.switch_page("app_pages/run.py")
    at.query_params["id"] = run_id[:8]  # the short id that lists show works too
    at.run()
    clean(at)
    assert at.header[0].value.startswith("vendor_prices · run")
    message = at.error[0].value
    assert f"**{error_type}** at step **{step}**" in message and f"after {retries} retr" in message
    assert "broken_feed.csv" in message
    shown = next(c.value for c in at.caption if "parameters" in c.value)
    assert shown.endswith(" · parameters feed=data/broken_feed.csv")


def test_quality_page_matches_the_store(console: Console) -> None:
    e = console.engine
    at = app(console, "data_analyst")
    at.switch_page("app_pages/quality.py").run()
    clean(at)
    assert len(at.get("plotly_chart")) == 3  # by pipeline, table and dimension
    dims = frame(at, "dimension").set_index("dimension")
    for dimension, checked, failed in rows(
        e,
        "SELECT dimension, sum(records_checked), sum(records_failed) FROM data_quality_checks c "
        "WHERE checked_at = "
        "(SELECT max(checked_at) FROM data_quality_checks d WHERE d.pipeline_name = c.pipeline_name) "
        "GROUP BY dimension",
    ):
        assert dims.loc[dimension, "pass rate"] == pytest.approx(
            100 * (1 - int(failed) / int(checked)), abs=0.01
        )

    at.radio(key="quality_section").set_value("Top issues").run()
    clean(at)
    issues = frame(at, "records failed")
    failing = rows(
        e,
        "SELECT rule_name, sum(records_failed) FROM data_quality_checks WHERE records_failed > 0 "
        "GROUP BY rule_name ORDER BY 2 DESC",
    )
    assert list(zip(issues["rule"], issues["records failed"], strict=True)) == [tuple(r) for r in failing]
    assert failing[0] == ("tailnum_in_planes", 50094)

    at.radio(key="quality_section").set_value("By source").run()
    clean(at)
    sources = frame(at, "records failed").set_index("table")
    # tailnum and dest come from flights: their failures count for the flights file
    assert sources.loc["flights", "records failed"] == 50094 + 7602 + 8255

    at.radio(key="quality_section").set_value("Quarantine").run()
    clean(at)
    with console.warehouse().connect() as conn:
        waiting = conn.execute(
            sa.text(
                "SELECT count(*) FROM headwater_quarantine "
                "WHERE pipeline = 'flights_clean' AND status = 'quarantined'"
            )
        ).scalar()
        by_rules = dict(
            conn.execute(sa.text("SELECT rules, count(*) FROM headwater_quarantine GROUP BY rules")).all()
        )
    overview = frame(at, "waiting rows").set_index("table")
    assert overview.loc["flights_clean", "waiting rows"] == waiting == 56295
    counts = frame(at, "rows")  # the JSON list of rules as text: "a, b"
    assert dict(zip(counts["rules"], counts["rows"], strict=True)) == {
        ", ".join(json.loads(k)): v for k, v in by_rules.items()
    }
    page = frame(at, "masked_values")
    assert len(page) == 100 and page["status"].eq("quarantined").all()

    at.radio(key="quality_section").set_value("Recommendations").run()
    clean(at)
    text = " ".join(m.value for m in at.markdown)
    assert f"{waiting:,} row(s) of flights_clean wait in quarantine" in text
    assert "no quality rules check this pipeline" in text  # carrier_monthly


def _closure(engine: sa.Engine, table: str, direction: str) -> set[str]:
    """Tables upstream/downstream of `table`, by a recursive query over data_lineage."""
    near, far = ("target_table", "source_table") if direction == "up" else ("source_table", "target_table")
    found = rows(
        engine,
        f"WITH RECURSIVE walk(t) AS (SELECT {far} FROM data_lineage WHERE {near} = :t "
        f"UNION SELECT l.{far} FROM data_lineage l JOIN walk w ON l.{near} = w.t) SELECT t FROM walk",
        t=table,
    )
    return {r[0] for r in found} - {table}


def test_lineage_page_walks_up_and_down(console: Console) -> None:
    e = console.engine
    at = app(console, "data_analyst")
    at.switch_page("app_pages/lineage.py").run()
    clean(at)
    dataset = scalar(
        e, "SELECT DISTINCT target_dataset FROM data_lineage WHERE target_table = 'carrier_daily'"
    )
    at.selectbox(key="lineage_node").set_value(f"{dataset}::carrier_daily").run()
    clean(at)
    up = set(frame(at, "column")["table"])  # the upstream listing comes first
    assert up == _closure(e, "carrier_daily", "up") == {"flights", "weather", "airlines"}
    shown = metrics(at)
    assert shown["Downstream tables"] == str(len(_closure(e, "carrier_daily", "down"))) == "1"
    assert shown["Upstream columns"] == str(
        scalar(
            e,
            "SELECT count(DISTINCT source_table || '.' || source_column) FROM data_lineage "
            "WHERE target_table = 'carrier_daily'",
        )
    )
    made = frame(at, "how")
    assert len(made) == scalar(e, "SELECT count(*) FROM data_lineage WHERE target_table = 'carrier_daily'")


def test_lineage_column_graph(console: Console) -> None:
    e = console.engine
    at = app(console, "data_analyst")
    at.switch_page("app_pages/lineage.py").run()
    dataset = scalar(
        e, "SELECT DISTINCT target_dataset FROM data_lineage WHERE target_table = 'carrier_monthly'"
    )
    at.selectbox(key="lineage_node").set_value(f"{dataset}::carrier_monthly.cancel_rate").run()
    at.radio(key="lineage_level").set_value("Columns").run()
    clean(at)
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    shown = set(chart["data"][0]["text"])
    # the column, what it is made from (two levels up, through carrier_daily) and nothing else
    up = rows(
        e,
        "WITH RECURSIVE walk(t, c) AS (SELECT source_table, source_column FROM data_lineage "
        "WHERE target_table = 'carrier_monthly' AND target_column = 'cancel_rate' "
        "UNION SELECT l.source_table, l.source_column FROM data_lineage l "
        "JOIN walk w ON l.target_table = w.t AND l.target_column = w.c) SELECT t || '.' || c FROM walk",
    )
    assert shown == {r[0] for r in up} | {"carrier_monthly.cancel_rate"}
    assert {"carrier_daily.cancelled", "flights.dep_time"} <= shown
    assert len(chart["layout"]["annotations"]) == scalar(
        e,
        "SELECT count(*) FROM data_lineage WHERE (target_table || '.' || target_column) IN ("
        + ", ".join(f"'{r[0]}'" for r in up)
        + ", 'carrier_monthly.cancel_rate')",
    )


def test_no_secret_reaches_the_pages(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_REDIS_URL", "redis://:topsecret-redis-pw@127.0.0.1:6379/0")
    at = app(console, "system_admin")
    texts: list[str] = []
    for page in ("app_pages/overview.py", "app_pages/admin.py"):
        at.switch_page(page).run()
        clean(at)
        texts += [m.value for m in at.markdown] + [str(d.value.to_dict()) for d in at.dataframe]
    assert any("Redis" in t for t in texts)
    assert not [t for t in texts if "topsecret-redis-pw" in t]


def test_alerts_page_matches_the_store(console: Console) -> None:
    e = console.engine
    at = app(console, "data_analyst")
    at.switch_page("app_pages/alerts.py").run()
    clean(at)
    shown = metrics(at)
    for label, status in (("Open", "open"), ("Acknowledged", "acknowledged"), ("Silenced", "suppressed")):
        assert shown[label] == str(
            scalar(e, "SELECT count(*) FROM alert_instances WHERE status = :s", s=status)
        )
    history = frame(at, "opened (UTC)")  # the active table comes first, then the history
    active = rows(
        e, "SELECT rule_name, pipeline_name, occurrences FROM alert_instances ORDER BY opened_at DESC"
    )
    assert [
        (r, p, n) for r, p, n in zip(history["rule"], history["pipeline"], history["seen"], strict=True)
    ] == [tuple(a) for a in active]
    assert next(d.value for d in at.dataframe if "channel" in d.value.columns)["status"].tolist() == [
        r[0]
        for r in rows(
            e,
            "SELECT d.status FROM alert_deliveries d JOIN alert_instances i ON i.rule_name = 'run-failed' "
            "AND CAST(d.instance_ids AS TEXT) LIKE '%' || i.id || '%' ORDER BY d.id",
        )
    ]


def test_a_run_link_opens_after_signing_in(console: Console) -> None:
    """An alert's link (/run?id=...) opened while signed out shows the sign-in form, then the run."""
    run_id = scalar(
        console.engine, "SELECT id FROM pipeline_executions WHERE pipeline_name = 'flights_daily'"
    )
    at = app(console)
    at.switch_page("app_pages/run.py")
    at.query_params["id"] = run_id
    at.run()
    assert at.title[0].value.endswith("Headwater") and not at.header
    at.text_input(key="login_user").input("analyst")
    at.text_input(key="login_password").input("console-test-Passw0rd")
    at.button(key="login_submit").click().run()
    clean(at)
    assert at.header[0].value == f"flights_daily · run {run_id[:8]}"


SEVERITY_FACTOR = {"info": 0.5, "warning": 1.0, "error": 2.0, "critical": 3.0}


def test_run_page_explains_the_quality_score(console: Console) -> None:
    e = console.engine
    run_id, score = rows(
        e, "SELECT id, quality_score FROM pipeline_executions WHERE pipeline_name = 'flights_clean'"
    )[0]
    checks = rows(
        e,
        "SELECT rule_name, suite, severity, weight, pass_rate FROM data_quality_checks "
        "WHERE execution_id = :i ORDER BY id",
        i=run_id,
    )
    assert len(checks) == 7
    weighted = [(1.0 if w is None else float(w)) * SEVERITY_FACTOR[sev] for _, _, sev, w, _ in checks]
    total = sum(weighted)
    at = app(console, "data_analyst")
    at.switch_page("app_pages/run.py")
    at.query_params["id"] = run_id
    at.run()
    clean(at)
    table = frame(at, "points lost")
    assert table["rule"].tolist() == [r[0] for r in checks]
    assert table["suite"].tolist() == [r[1] for r in checks]
    assert table["severity"].tolist() == [r[2] for r in checks]
    lost = []
    for i, ((_, _, _, weight, rate), eff) in enumerate(zip(checks, weighted, strict=True)):
        share = 100 * eff / total
        points = share * float(rate) / 100
        lost.append(share - points)
        assert table["weight"][i] == pytest.approx(1.0 if weight is None else float(weight))
        assert table["\N{MULTIPLICATION SIGN} severity"][i] == pytest.approx(eff)
        assert table["share %"][i] == pytest.approx(share)
        assert table["pass %"][i] == pytest.approx(float(rate))
        assert table["points"][i] == pytest.approx(points)
        assert table["points lost"][i] == pytest.approx(share - points)
    assert table["share %"].sum() == pytest.approx(100.0)
    # the points add up to the score the run recorded
    assert round(table["points"].sum(), 2) == pytest.approx(float(score), abs=0.005)
    worst = sorted(
        ((lost_, r[0]) for lost_, r in zip(lost, checks, strict=True) if lost_ >= 0.005), reverse=True
    )[:3]
    summary = f"score {float(score):g} = 100 minus the points rules lost: " + ", ".join(
        f"{rule} -{points:.2f}" for points, rule in worst
    )
    assert any(c.value.startswith(summary + ". Each rule counts") for c in at.caption), summary


def _unchecked(at: Any) -> list[str]:
    """The pipelines the Recommendations section says no quality rule checks."""
    return sorted(
        m.value.split("`")[1] for m in at.markdown if "no quality rules check this pipeline" in m.value
    )


def test_recommendations_and_run_pages_agree_on_what_was_checked(console: Console) -> None:
    e = console.engine
    unchecked = [
        r[0]
        for r in rows(
            e,
            "SELECT name FROM data_pipelines WHERE is_active AND name NOT IN "
            "(SELECT DISTINCT pipeline_name FROM data_quality_rules) ORDER BY name",
        )
    ]
    assert unchecked == ["carrier_monthly"]  # vendor_prices has only `expect:` rules: it is checked
    assert rows(e, "SELECT DISTINCT suite FROM data_quality_rules WHERE pipeline_name = 'vendor_prices'") == [
        ("expect",)
    ]
    at = app(console, "data_analyst")
    at.switch_page("app_pages/quality.py").run()
    at.radio(key="quality_section").set_value("Recommendations").run()
    clean(at)
    assert _unchecked(at) == unchecked
    assert "no quality suite" not in " ".join(m.value for m in at.markdown)

    # each pipeline's latest completed run: checked on its run page exactly when it is not recommended
    latest = rows(
        e,
        "SELECT p.pipeline_name, p.id FROM pipeline_executions p WHERE p.status IN "
        + OK
        + " ORDER BY p.pipeline_name",
    )
    assert len(latest) == 5
    at.switch_page("app_pages/run.py")
    for pipeline, run_id in latest:
        at.query_params["id"] = run_id
        at.run()
        clean(at)
        assert at.header[0].value == f"{pipeline} · run {run_id[:8]}"
        said_unchecked = "No quality rules were checked in this run." in [c.value for c in at.caption]
        assert said_unchecked == (pipeline in unchecked), pipeline
        expected = rows(
            e,
            "SELECT rule_name, suite FROM data_quality_checks WHERE execution_id = :i ORDER BY id",
            i=run_id,
        )
        if said_unchecked:
            assert expected == []
        else:
            shown = frame(at, "pass rate")
            assert shown["rule"].tolist() == [r[0] for r in expected]
    vendor = rows(
        e,
        "SELECT c.rule_name FROM data_quality_checks c JOIN pipeline_executions p ON p.id = c.execution_id "
        "WHERE p.pipeline_name = 'vendor_prices' AND c.suite = 'expect' ORDER BY c.id",
    )
    assert len(vendor) == 2


def test_a_run_not_recorded_yet_is_starting(console: Console) -> None:
    """Run now links to /run?id=<the id it chose> at once: until the run is recorded the page says
    it is starting (and re-checks), then shows the run."""
    import uuid

    from headwater.pipeline.launch import prepare_run
    from headwater.store import Store

    run_id = str(uuid.uuid4())
    at = app(console, "data_analyst")
    at.switch_page("app_pages/run.py")
    at.query_params["id"] = run_id
    at.run()
    clean(at)
    assert at.info[0].value.startswith(f"Run {run_id[:8]} is starting…; this page refreshes")
    assert not at.header and not at.error

    store = Store(console.settings.database_url)
    try:  # what `headwater run --run-id` does first: record the run, running, steps pending
        prepare_run(
            store,
            console.settings.pipelines_dir,
            "vendor_prices",
            params=None,
            execution_type="manual",
            warehouse_url=console.settings.warehouse_url,
            run_id=run_id,
        )
    finally:
        store.dispose()
    at.run()
    clean(at)
    assert not at.info
    assert at.header[0].value == f"vendor_prices · run {run_id[:8]}"
    assert ":blue-badge[running]" in at.caption[0].value
    assert metrics(at)["Duration"] == "—"
    assert frame(at, "records in")["status"].tolist() == ["pending"] * len(frame(at, "records in"))

    at.query_params["id"] = "0badc0de"  # a short id nothing has: not a run that is starting
    at.run()
    assert at.error[0].value == "No run, or more than one, has an id starting with '0badc0de'."


BAD_TEXT = re.compile(r"\bNone\b|\bnan\b|\bNaN\b|\bNaT\b|\{'|\[\{'|\['")
TEXT_ELEMENTS = (
    "title",
    "header",
    "subheader",
    "markdown",
    "caption",
    "text",
    "info",
    "warning",
    "error",
    "success",
)


def _show_every_column(at: Any) -> None:
    for chooser in at.multiselect:
        if chooser.key and chooser.key.endswith("_columns") and chooser.value != chooser.options:
            chooser.set_value(list(chooser.options))
    at.run()


def _bad_text(at: Any, where: str) -> list[str]:
    """Every cell of every table and every text element on the page that shows a raw None, nan, a
    dict or a list repr."""
    clean(at)
    found = []
    for kind in TEXT_ELEMENTS:
        found += [f"{where} {kind}: {e.value}" for e in getattr(at, kind) if BAD_TEXT.search(str(e.value))]
    found += [f"{where} expander: {x.label}" for x in at.expander if BAD_TEXT.search(x.label)]
    found += [f"{where} metric: {m.label}={m.value}" for m in at.metric if BAD_TEXT.search(str(m.value))]
    for df in at.dataframe:
        table = df.value
        for column in table.columns:
            for value in table[column].tolist():
                if BAD_TEXT.search(str(value)):
                    found.append(f"{where} table {list(table.columns)} column {column!r}: {value!r}")
                    break
    return found


def test_no_page_shows_none_nan_or_a_raw_dict(console: Console) -> None:
    e = console.engine
    at = app(console, "system_admin")
    bad = _bad_text(at, "overview")

    at.switch_page("app_pages/pipelines.py").run()
    for name in ("carrier_monthly", "vendor_prices", "flights_clean"):
        at.selectbox(key="pipeline_pick").set_value(name).run()
        _show_every_column(at)
        bad += _bad_text(at, f"pipelines/{name}")

    at.switch_page("app_pages/run.py").run()
    _show_every_column(at)
    for run_id, pipeline in rows(e, "SELECT id, pipeline_name FROM pipeline_executions ORDER BY started_at"):
        at.query_params["id"] = run_id
        at.run()
        _show_every_column(at)
        bad += _bad_text(at, f"run {pipeline} {run_id[:8]}")
        samples = at.selectbox(key="sample_step") if "sample_step" in [s.key for s in at.selectbox] else None
        for step in samples.options[1:] if samples else []:
            at.selectbox(key="sample_step").set_value(step).run()
            bad += _bad_text(at, f"run {pipeline} {run_id[:8]} samples of {step}")

    at.switch_page("app_pages/quality.py").run()
    for section in ("Trends", "Top issues", "By source", "Recommendations", "Quarantine"):
        at.radio(key="quality_section").set_value(section).run()
        _show_every_column(at)
        bad += _bad_text(at, f"quality/{section}")
    at.selectbox(key="quarantine_status").set_value("(any)").run()
    bad += _bad_text(at, "quality/Quarantine (any)")

    at.switch_page("app_pages/lineage.py").run()
    bad += _bad_text(at, "lineage")
    at.switch_page("app_pages/alerts.py").run()
    at.text_input(key="silence_reason").input("backfill")
    at.button(key="silence_submit").click().run()  # a silence, listed with its matchers
    bad += _bad_text(at, "alerts")
    at.switch_page("app_pages/admin.py").run()
    for section in ("Users", "Settings", "Audit log"):
        at.radio(key="admin_section").set_value(section).run()
        bad += _bad_text(at, f"admin/{section}")
    assert bad == []
    assert len(at.dataframe) >= 1


def test_change_a_user_starts_from_their_role(console: Console) -> None:
    at = app(console, "system_admin")
    at.switch_page("app_pages/admin.py").run()
    clean(at)
    expected = dict(rows(console.engine, "SELECT username, role FROM console_users"))
    assert expected["engineer"] == "data_engineer"
    for user in ("engineer", "analyst", "admin", "engineer"):
        at.selectbox(key="change_user").set_value(user).run()
        clean(at)
        assert at.selectbox(key="change_role").value == expected[user], user
