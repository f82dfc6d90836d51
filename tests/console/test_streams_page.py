"""The Streams page (AppTest) on a store filled by a real processor run (tests/streams/metrics_run.py:
`headwater stream produce` + `headwater stream run --idle-exit` against the real Redis): the
processors table, the metrics, the per-minute history and the dead-letter browser match SQL over
the store and the dead-letter stream; values are shown masked only.

Real services: Redis (the test's own stream key), the embedded SQLite store and warehouse."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import sqlalchemy as sa

from headwater.access import login
from headwater.access.users import add_user
from tests.golden import APP, PASSWORD
from tests.streams.metrics_run import EVENTS, StreamRun, stream_run_fixture  # noqa: F401
from tests.streams.redis_keys import rds_fixture, stream_key_fixture  # noqa: F401

pytestmark = pytest.mark.redis


def _by_column(at: Any, column: str) -> Any:
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no dataframe with {column!r}: {[list(d.value.columns) for d in at.dataframe]}")


def test_streams_page_matches_the_store(
    stream_run: StreamRun, rds: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    run = stream_run
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    add_user(run.store, "analyst", "data_analyst", PASSWORD, datetime.now(UTC))
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["hw_token"] = login(run.store, "analyst", PASSWORD, datetime.now(UTC))
    at.run()
    at.switch_page("app_pages/streams.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Streams"
    assert {m.label: m.value for m in at.metric} == {
        "Processors": "1",
        "Healthy": "0",
        "Lagging or stalled": "0",
        "Failed": "0",
    }
    proc = run.sql("SELECT * FROM stream_processors")[0]
    newest = run.sql("SELECT * FROM stream_metrics ORDER BY minute DESC LIMIT 1")[0]
    table = _by_column(at, "events/s").set_index("name")
    row = table.loc[run.name]
    assert (row["health"], row["read"], row["loaded"], row["dead-lettered"], row["last id"]) == (
        "stopped",
        proc.events_read,
        proc.events_loaded,
        proc.events_dead,
        proc.last_id,
    )
    assert proc.events_read == EVENTS
    assert (row["lag"], row["pending"]) == (proc.lag, newest.pending) == (0, 0)
    assert row["events/s"] == pytest.approx(round(newest.throughput, 1))

    # the per-minute history: one row per minute, newest first, as stored
    history = _by_column(at, "p99 latency (ms)")
    minutes = run.sql(
        "SELECT events_read, events_dead, latency_p99_ms FROM stream_metrics ORDER BY minute DESC"
    )
    assert [int(v) for v in history["read"]] == [m.events_read for m in minutes]
    assert [int(v) for v in history["dead-lettered"]] == [m.events_dead for m in minutes]
    assert list(history["p99 latency (ms)"]) == pytest.approx([round(m.latency_p99_ms, 1) for m in minutes])
    assert len(at.get("plotly_chart")) == 2

    # the dead-letter browser: the newest 50 of the dead stream, masked
    dead = _by_column(at, "values (masked)")
    raw = rds.xrevrange(f"{run.stream}:dead", count=50)
    assert list(dead["entry id"]) == [f["source_id"] for _, f in raw]
    assert list(dead["rules broken"]) == [", ".join(json.loads(f["rules"])) for _, f in raw]
    patients = {json.loads(f["payload"])["patient_id"] for _, f in rds.xrange(run.stream)}
    assert not any(p in v for v in dead["values (masked)"] for p in patients)
    assert any(f"holds {run.bad} dead letter(s)" in c.value for c in at.caption)
    at.number_input(key="streams_dead_count").set_value(5).run()
    assert len(_by_column(at, "values (masked)")) == 5


def test_an_engineer_replays_chosen_dead_letters_after_a_fix(
    stream_run: StreamRun, rds: redis.Redis, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The spec's heart-rate range is widened; an analyst's replay is refused (and audited), an
    engineer's loads exactly the chosen letters that pass now, once, through
    headwater.streams.replay (the same function as `headwater stream dead --replay`)."""
    from streamlit.testing.v1 import AppTest

    run = stream_run
    spec = tmp_path / "vitals_stream.yaml"  # the spec the processor ran (tests/streams/metrics_run.py)
    spec.write_text(
        spec.read_text().replace(
            "heart_rate >= 40 AND heart_rate <= 200", "heart_rate >= 20 AND heart_rate <= 250"
        )
    )
    monkeypatch.setenv("HEADWATER_PIPELINES", str(tmp_path))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    now = datetime.now(UTC)
    add_user(run.store, "analyst", "data_analyst", PASSWORD, now)
    add_user(run.store, "engineer", "data_engineer", PASSWORD, now)
    # independently: among the 50 newest letters, two that break only the heart-rate range (inside
    # 20..250, as every out-of-range heart rate the generator writes) and one that breaks another rule
    newest: list[dict[str, str]] = [f for _, f in cast(Any, rds.xrevrange(f"{run.stream}:dead", count=50))]
    heart = [f["source_id"] for f in newest if json.loads(f["rules"]) == ["heart_rate_range"]][:2]
    other = [f["source_id"] for f in newest if "heart_rate_range" not in json.loads(f["rules"])][:1]
    assert len(heart) == 2 and len(other) == 1
    rules_of_other = json.loads(next(f["rules"] for f in newest if f["source_id"] == other[0]))

    def loaded() -> set[str]:
        with run.warehouse.connect() as conn:
            return {r[0] for r in conn.execute(sa.text("SELECT _entry_id FROM vitals"))}

    before = loaded()
    for user in ("analyst", "engineer"):
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state["hw_token"] = login(run.store, user, PASSWORD, datetime.now(UTC))
        at.run()
        at.switch_page("app_pages/streams.py").run()
        assert not at.exception, [e.value for e in at.exception]
        at.multiselect(key="streams_replay_ids").set_value([*heart, *other]).run()
        at.button(key="streams_replay").click().run()
        assert not at.exception, [e.value for e in at.exception]
        if user == "analyst":
            assert [e.value for e in at.error] == [
                "Not allowed: analyst (data_analyst) may not stream.replay_dead Fix: ask a system admin "
                "for one of the roles data_engineer, system_admin"
            ]
            assert loaded() == before
    assert [s.value for s in at.success] == [
        f"vitals_stream: 3 dead letter(s) selected: 2 loaded, 0 already replayed, 1 still failing "
        f"({', '.join(f'{r} 1' for r in sorted(rules_of_other))}), 0 source entries trimmed"
    ]
    assert loaded() == before | set(heart)
    at.run()  # the table shows them replayed; they are no longer offered
    dead = _by_column(at, "replayed (UTC)").set_index("entry id")
    assert set(dead.index[dead["replayed (UTC)"] != "—"]) == set(heart)  # missing values show as —
    assert not set(heart) & set(at.multiselect(key="streams_replay_ids").options)
    audited = run.sql(
        "SELECT username, action, target, outcome FROM audit_log WHERE action = 'stream.replay_dead'"
    )
    assert [tuple(r) for r in audited] == [
        ("analyst", "stream.replay_dead", "vitals_stream", "denied"),
        ("engineer", "stream.replay_dead", "vitals_stream", "ok"),
    ]
    rds.delete(f"{run.stream}:dead:replayed")
