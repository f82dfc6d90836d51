"""prefect.yaml: every entrypoint loads a flow named after its deployment; parameters fit the flow;
schedules are valid crons in real time zones and match the specs; no key is one Prefect would
silently ignore."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from cronsim import CronSim
from prefect.cli.deploy._models import DeploymentConfig, PrefectYamlModel, RawScheduleConfig, WorkPoolConfig
from prefect.cli.deploy._triggers import DeploymentTriggerAdapter
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.flows import load_flow_from_entrypoint

from headwater.spec.loader import load_pipelines
from tests.conftest import EXAMPLES, REPO

CONFIG = yaml.safe_load((REPO / "prefect.yaml").read_text())
SERVICE_FLOWS = {"quality_monitor"}  # deployments that are not pipelines
ALL_DEPLOYMENTS: list[dict[str, Any]] = CONFIG["deployments"]
DEPLOYMENTS = [d for d in ALL_DEPLOYMENTS if d["name"] not in SERVICE_FLOWS]


def unknown(keys: set[str], model: type) -> set[str]:
    known = set(model.model_fields) | {f.alias for f in model.model_fields.values() if f.alias}
    return keys - known


def test_top_level_keys_are_known() -> None:
    assert unknown(set(CONFIG), PrefectYamlModel) == set()
    PrefectYamlModel.model_validate(CONFIG)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_deployment(deployment: dict[str, Any]) -> None:
    assert unknown(set(deployment), DeploymentConfig) == set()
    assert unknown(set(deployment["work_pool"]), WorkPoolConfig) == set()
    DeploymentConfig.model_validate(deployment)

    flow = load_flow_from_entrypoint(str(REPO / deployment["entrypoint"]))
    assert flow.name == deployment["name"]
    # parameters must bind to the flow's signature and pass its validation
    flow.validate_parameters(deployment["parameters"])
    assert deployment["parameters"]["pipeline"] == deployment["name"]

    spec = load_pipelines(EXAMPLES)[deployment["name"]].spec
    assert deployment["tags"] == spec.tags
    assert deployment["description"] == spec.description
    schedules = deployment.get("schedules") or []
    assert len(schedules) == (1 if spec.schedule else 0)
    for schedule in schedules:
        assert spec.schedule is not None
        assert unknown(set(schedule), RawScheduleConfig) == set()
        RawScheduleConfig.model_validate(schedule)
        CronSim(schedule["cron"], datetime(2026, 1, 1))
        ZoneInfo(schedule["timezone"])
        assert (schedule["cron"], schedule["timezone"]) == (spec.schedule.cron, spec.schedule.timezone)
    for trigger in deployment.get("triggers") or []:
        assert unknown(set(trigger), DeploymentEventTrigger) == set()
        parsed = DeploymentTriggerAdapter.validate_python({"name": "t", **trigger})
        assert isinstance(parsed, DeploymentEventTrigger)
        upstream = trigger["match_related"]["prefect.resource.name"]
        assert upstream in {d["name"] for d in DEPLOYMENTS}, "a trigger must name a pipeline's flow"
        flow.validate_parameters(trigger["parameters"])
        assert trigger["parameters"]["pipeline"] == deployment["name"]
    assert schedules or deployment.get("triggers"), "a deployment that never runs by itself"


def test_every_pipeline_has_a_deployment_and_flow() -> None:
    import flows.pipelines as module

    specs = load_pipelines(EXAMPLES)
    assert {d["name"] for d in DEPLOYMENTS} == set(specs)
    for name in specs:
        assert getattr(module, name).name == name


def test_quality_monitor_deployment() -> None:
    (monitor,) = [d for d in ALL_DEPLOYMENTS if d["name"] == "quality_monitor"]
    assert unknown(set(monitor), DeploymentConfig) == set()
    flow = load_flow_from_entrypoint(str(REPO / monitor["entrypoint"]))
    assert flow.name == "quality_monitor"
    flow.validate_parameters(monitor["parameters"])
    (schedule,) = monitor["schedules"]
    assert unknown(set(schedule), RawScheduleConfig) == set()
    assert RawScheduleConfig.model_validate(schedule).interval is not None


def test_a_misspelt_key_is_caught() -> None:
    """The check above can fail: Prefect itself accepts this silently."""
    bad = {**DEPLOYMENTS[0], "schedulez": DEPLOYMENTS[0]["schedules"]}
    DeploymentConfig.model_validate(bad)  # Prefect ignores it...
    assert unknown(set(bad), DeploymentConfig) == {"schedulez"}  # ...we do not
