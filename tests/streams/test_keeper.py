"""The rule by which `headwater up` keeps a stream processor's flow run going (headwater/streams/
keeper.py), on flow runs as Prefect describes them: start one when there is none, leave a live one
alone, restart one that ended with a doubling back-off, never restart one a person cancelled or whose
deployment is paused; a run left Running whose process is gone is crashed. And which streaming specs
`up` keeps (a Redis to read) and how their deployment is planned."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

from headwater.deploy import plan_all
from headwater.settings import Settings
from headwater.streams.keeper import (
    Decision,
    FlowRunView,
    StreamDeployment,
    decide,
    gone_from_host,
    kept_streams,
    restart_delay,
)
from tests.streams.test_processor import vitals_spec

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def run(state: str, *, lived: float = 30.0, ended_ago: float = 1.0, name: str = "r") -> FlowRunView:
    end = NOW - timedelta(seconds=ended_ago)
    start = end - timedelta(seconds=lived)
    final = state not in {"SCHEDULED", "PENDING", "RUNNING", "CANCELLING"}
    return FlowRunView(
        id=name,
        name=name,
        state_type=state,
        state_name=state.title(),
        created=start - timedelta(seconds=9),
        start_time=start,
        end_time=end if final else None,
        pid=None,
    )


def deployment(*runs: FlowRunView, paused: bool = False) -> StreamDeployment:
    return StreamDeployment("vitals_stream", "d1", paused, list(runs))


def test_no_run_yet_starts_one() -> None:
    assert decide(deployment(), NOW) == Decision("start", "no flow run yet")


def test_a_live_run_is_left_alone_even_when_paused_and_an_older_one_crashed() -> None:
    for state in ("SCHEDULED", "PENDING", "RUNNING", "CANCELLING"):
        found = decide(deployment(run(state, name="now"), run("CRASHED"), paused=True), NOW)
        assert found == Decision("keep", f"flow run 'now' is {state.title()}")


def test_a_crashed_run_restarts_after_the_back_off() -> None:
    crashed = deployment(run("CRASHED", lived=30.0, ended_ago=4.0, name="a"))
    reason = "flow run 'a' ended Crashed after 30.0 s"
    at = NOW + timedelta(seconds=1)
    assert decide(crashed, NOW) == Decision("wait", f"{reason}; starting a new one in 5 s", at)
    assert decide(crashed, NOW + timedelta(seconds=1)) == Decision("start", reason, at)


def test_failed_and_completed_runs_restart_too() -> None:
    # completed: its process was stopped (SIGTERM) without a cancellation
    for state in ("FAILED", "COMPLETED"):
        assert decide(deployment(run(state, ended_ago=6.0)), NOW).action == "start"


def test_the_back_off_doubles_for_each_short_run_in_a_row_up_to_five_minutes() -> None:
    short, long = run("CRASHED", lived=3.0), run("CRASHED", lived=600.0)
    assert restart_delay([short]) == 5.0
    assert restart_delay([short, short, short]) == 20.0
    assert restart_delay([short, short, long, short, short]) == 10.0  # a healthy run resets it
    assert restart_delay([long]) == 5.0
    assert restart_delay([short] * 10) == 300.0
    never_started = FlowRunView("x", "x", "CRASHED", "Crashed", NOW, None, NOW, None)
    assert restart_delay([never_started, short]) == 10.0
    found = decide(deployment(*[run("CRASHED", lived=1.0, ended_ago=100.0)] * 6), NOW)
    assert found.action == "wait" and found.at == NOW + timedelta(seconds=60)


def test_a_cancelled_run_or_a_paused_deployment_is_not_restarted() -> None:
    cancelled = decide(deployment(run("CANCELLED", name="c"), run("CRASHED")), NOW + timedelta(hours=1))
    assert cancelled == Decision(
        "hold", "flow run 'c' was cancelled: not restarted (start a run of the deployment to)"
    )
    paused = decide(deployment(run("CRASHED"), paused=True), NOW + timedelta(hours=1))
    assert paused == Decision("hold", "its deployment is paused: not restarted (resume it to)")
    # a run a person started after the cancellation ended: kept running again
    again = deployment(run("CRASHED", name="mine", ended_ago=10.0), run("CANCELLED", ended_ago=100.0))
    assert decide(again, NOW).action == "start"


def test_a_run_left_running_whose_process_is_gone_is_crashed() -> None:
    left = run("RUNNING", name="left")
    found = decide(deployment(left), NOW, gone=lambda r: r.name == "left")
    assert found == Decision("crashed", "flow run 'left' says Running but its process is gone", None, left)


def test_gone_from_host_looks_only_at_runs_from_before_this_up() -> None:
    since = NOW
    me = psutil.Process()
    born = datetime.fromtimestamp(me.create_time(), UTC)
    dead = psutil.Popen(["true"])
    dead.wait()
    gone = gone_from_host(since)

    def view(pid: int | None, started: datetime) -> FlowRunView:
        return FlowRunView("x", "x", "RUNNING", "Running", started, started, None, pid)

    assert gone(view(dead.pid, born)) is True  # its process ended
    assert gone(view(os.getpid(), born + timedelta(seconds=1))) is False  # alive
    assert gone(view(os.getpid(), born - timedelta(hours=1))) is True  # the pid reused by a newer process
    assert gone(view(dead.pid, since + timedelta(seconds=1))) is False  # this up's: its worker reports it
    assert gone(view(None, born)) is False


def test_streaming_specs_are_kept_when_they_have_a_redis(tmp_path: Path) -> None:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    vitals_spec(folder, "hw_keeper_stream")
    (plan,) = plan_all(folder)[0]
    assert (plan.entrypoint, plan.tags, plan.schedule, plan.triggers, plan.streaming) == (
        "flows.stream.vitals_stream",
        ["headwater", "headwater:stream"],
        None,
        [],
        True,
    )
    assert plan.parameters == {"pipeline": "vitals_stream", "pipelines_dir": str(folder.resolve())}
    without = kept_streams(folder, Settings.from_env({"HEADWATER_HOME": str(tmp_path / "h")}))
    assert (without.kept, without.skipped) == ([], ["vitals_stream"])
    assert without.note() == "vitals_stream not run: HEADWATER_REDIS_URL is not set"
    settings = Settings.from_env(
        {"HEADWATER_HOME": str(tmp_path / "h"), "HEADWATER_REDIS_URL": "redis://127.0.0.1:6379/0"}
    )
    assert kept_streams(folder, settings).note() == "vitals_stream kept running"
    own = (
        (folder / "vitals_stream.yaml")
        .read_text()
        .replace("kind: redis_stream\n", "kind: redis_stream\n    url: redis://127.0.0.1:6379/0\n")
    )
    (folder / "vitals_stream.yaml").write_text(own)
    no_env = Settings.from_env({"HEADWATER_HOME": str(tmp_path / "h")})
    assert kept_streams(folder, no_env).kept == ["vitals_stream"]
