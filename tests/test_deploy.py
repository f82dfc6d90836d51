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
