"""`headwater deploy` against a real Prefect API: a spec dropped into the pipelines folder becomes a
deployment with exactly its cron, time zone, trigger, concurrency, pool, queue and priority, and
nothing else is edited; deploying again changes nothing; a changed spec updates its deployment (the
version is the spec's hash); a removed spec's deployment is paused, and comes back when the spec does."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.cli import main
from headwater.deploy import plan_all
from headwater.settings import Settings
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.prefect

UPSTREAM = """
name: hw_deploy_upstream
description: Vendor prices, for the deploy test.
sources:
  feed: {kind: file, path: data/vendor_prices.csv}
steps:
  - {name: extract, type: extract, source: feed}
  - {name: load, type: load, depends_on: [extract], destination: {table: deploy_up, mode: overwrite}}
"""

NEW = """
name: hw_deploy_new
description: A new spec with a cron, a trigger and a precondition.
tags: [test]
schedule: {cron: "15 4 * * 1-5", timezone: Asia/Kolkata}
triggers: {after: [hw_deploy_upstream]}
when: {new_files: "data/*.csv"}
concurrency: 2
work_pool: {name: hw-deploy-pool, queue: hw-fast, priority: 3}
sources:
  feed: {kind: file, path: data/vendor_prices.csv}
steps:
  - {name: extract, type: extract, source: feed}
  - {name: load, type: load, depends_on: [extract], destination: {table: deploy_new, mode: overwrite}}
"""


@pytest.fixture
def folder(tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    out = tmp_path / "pipelines"
    (out / "data").mkdir(parents=True)
    shutil.copy(EXAMPLES / "data" / "vendor_prices.csv", out / "data")
    (out / "upstream.yaml").write_text(UPSTREAM)
    yield out
    from prefect import get_client

    with get_client(sync_client=True) as client:
        for name in ("hw_deploy_upstream", "hw_deploy_new"):
            with contextlib.suppress(Exception):
                client.delete_deployment(client.read_deployment_by_name(f"{name}/{name}").id)


def _deployment(name: str) -> Any:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(f"{name}/{name}")


def _automations(deployment_id: Any) -> list[Any]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return list(client.read_resource_related_automations(f"prefect.deployment.{deployment_id}"))


def _deploy(folder: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert main(["deploy", "--pipelines", str(folder)]) == 0
    out = capsys.readouterr().out
    states = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("hw_deploy_"):
            states[parts[0]] = parts[1]
    return states


def test_a_new_spec_becomes_its_deployment_and_follows_the_spec(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _deploy(folder, capsys) == {"hw_deploy_upstream": "created"}
    (folder / "new.yaml").write_text(NEW)  # the only edit: a spec dropped in
    assert _deploy(folder, capsys) == {"hw_deploy_upstream": "unchanged", "hw_deploy_new": "created"}

    deployment = _deployment("hw_deploy_new")
    (plan,) = [p for p in plan_all(folder)[0] if p.pipeline == "hw_deploy_new"]
    assert deployment.version == plan.version
    assert deployment.entrypoint == "flows.pipelines.hw_deploy_new"
    assert deployment.parameters == {"pipeline": "hw_deploy_new", "pipelines_dir": str(folder.resolve())}
    (schedule,) = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (
        "15 4 * * 1-5",
        "Asia/Kolkata",
        True,
    )
    assert deployment.global_concurrency_limit.limit == 2
    assert (deployment.work_pool_name, deployment.work_queue_name) == ("hw-deploy-pool", "hw-fast")
    from prefect import get_client

    with get_client(sync_client=True) as client:
        assert client.read_work_pool("hw-deploy-pool").type == "process"
        assert client.read_work_queue_by_name("hw-fast", work_pool_name="hw-deploy-pool").priority == 3
    (automation,) = _automations(deployment.id)
    trigger = automation.trigger
    assert trigger.expect == {"headwater.pipeline.completed", "headwater.pipeline.completed_with_warnings"}
    assert dict(trigger.match.items()) == {"prefect.resource.id": ["headwater.pipeline.hw_deploy_upstream"]}
    (action,) = automation.actions
    assert action.deployment_id == deployment.id
    assert action.parameters == {"pipeline": "hw_deploy_new", "execution_type": "triggered"}

    # a changed spec: its deployment is updated (new version, the new schedule only, one trigger)
    (folder / "new.yaml").write_text(NEW.replace('"15 4 * * 1-5"', '"0 9 * * *"'))
    assert _deploy(folder, capsys) == {"hw_deploy_upstream": "unchanged", "hw_deploy_new": "updated"}
    updated = _deployment("hw_deploy_new")
    assert updated.id == deployment.id and updated.version != deployment.version
    assert [s.schedule.cron for s in updated.schedules] == ["0 9 * * *"]
    assert len(_automations(updated.id)) == 1

    # removed: paused (history kept); back: resumed
    (folder / "new.yaml").unlink()
    assert _deploy(folder, capsys) == {"hw_deploy_upstream": "unchanged", "hw_deploy_new": "paused"}
    assert _deployment("hw_deploy_new").paused is True
    (folder / "new.yaml").write_text(NEW)
    assert _deploy(folder, capsys) == {"hw_deploy_upstream": "unchanged", "hw_deploy_new": "updated"}
    assert _deployment("hw_deploy_new").paused is False


def test_a_trigger_on_an_unknown_pipeline_is_refused_naming_the_file(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "new.yaml").write_text(
        NEW.replace("after: [hw_deploy_upstream]", "after: [hw_deploy_upstreem]")
    )
    assert main(["deploy", "--pipelines", str(folder)]) == 2
    captured = capsys.readouterr()
    assert "new.yaml" in captured.err and "no pipeline named hw_deploy_upstreem" in captured.err
    assert "hw_deploy_upstream" in captured.out  # the good spec is deployed all the same


def test_headwater_pause_and_resume_act_on_the_deployment_and_are_audited(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _deploy(folder, capsys)
    assert main(["pause", "hw_deploy_upstream"]) == 0
    assert _deployment("hw_deploy_upstream").paused is True
    assert main(["resume", "hw_deploy_upstream"]) == 0
    assert _deployment("hw_deploy_upstream").paused is False
    assert main(["pause", "no_such_pipeline"]) == 1  # no deployment: refused, and audited as failed
    from headwater.access.audit import read
    from headwater.store import Store

    store = Store(Settings.from_env().database_url)
    entries = [(e["action"], e["target"], e["outcome"], e["source"]) for e in reversed(read(store.engine))]
    store.dispose()
    assert entries == [
        ("pipeline.pause", "hw_deploy_upstream", "ok", "cli"),
        ("pipeline.resume", "hw_deploy_upstream", "ok", "cli"),
        ("pipeline.pause", "no_such_pipeline", "failed", "cli"),
    ]


def test_require_all_is_a_compound_trigger_within_the_window(tmp_path: Path) -> None:
    """Pure planning (no server): `require: all` becomes Prefect's compound trigger, one event trigger
    per upstream pipeline, within the spec's window."""
    from prefect.cli.deploy._triggers import DeploymentTriggerAdapter
    from prefect.events.schemas.deployment_triggers import DeploymentCompoundTrigger

    from headwater.deploy import upstream_of

    (tmp_path / "data").mkdir()
    shutil.copy(EXAMPLES / "data" / "vendor_prices.csv", tmp_path / "data")
    for name in ("a_src", "b_src"):
        (tmp_path / f"{name}.yaml").write_text(UPSTREAM.replace("hw_deploy_upstream", name))
    (tmp_path / "both.yaml").write_text(
        NEW.replace(
            "triggers: {after: [hw_deploy_upstream]}",
            "triggers: {after: [a_src, b_src], require: all, within: 2h}",
        )
    )
    plans, problems = plan_all(tmp_path)
    assert problems == []
    (plan,) = [p for p in plans if p.pipeline == "hw_deploy_new"]
    (trigger,) = plan.triggers
    parsed = DeploymentTriggerAdapter.validate_python(trigger)
    assert isinstance(parsed, DeploymentCompoundTrigger)
    assert parsed.require == "all" and parsed.within.total_seconds() == 7200
    assert [t.match.get("prefect.resource.id") for t in parsed.triggers] == [
        ["headwater.pipeline.a_src"],
        ["headwater.pipeline.b_src"],
    ]
    assert upstream_of(trigger) == ["a_src", "b_src"]
