"""prefect.yaml is generated from the specs (`headwater deploy --prefect-yaml prefect.yaml`): the
committed file is exactly what the specs say today; every entrypoint loads the flow named after its
deployment; parameters fit the flow; schedules are valid crons in real time zones; triggers parse as
Prefect's own; no key is one Prefect would silently ignore."""

from __future__ import annotations

from datetime import datetime
from importlib.metadata import version
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from cronsim import CronSim
from prefect.cli.deploy._models import DeploymentConfig, PrefectYamlModel, RawScheduleConfig, WorkPoolConfig
from prefect.cli.deploy._triggers import DeploymentTriggerAdapter
from prefect.events.schemas.deployment_triggers import DeploymentCompoundTrigger, DeploymentEventTrigger
from prefect.flows import load_flow_from_entrypoint

from headwater.deploy import all_plans, prefect_yaml, upstream_of
from headwater.spec.loader import load_pipelines
from tests.conftest import EXAMPLES, REPO

TEXT = (REPO / "prefect.yaml").read_text()
CONFIG = yaml.safe_load(TEXT)
SERVICE_FLOWS = {"quality_monitor"}  # deployments that are not pipelines
ALL_DEPLOYMENTS: list[dict[str, Any]] = CONFIG["deployments"]
DEPLOYMENTS = [d for d in ALL_DEPLOYMENTS if d["name"] not in SERVICE_FLOWS]


@pytest.fixture(autouse=True)
def _examples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_PIPELINES", str(EXAMPLES))


def unknown(keys: set[str], model: type) -> set[str]:
    known = set(model.model_fields) | {f.alias for f in model.model_fields.values() if f.alias}
    return keys - known


def test_prefect_yaml_is_what_the_specs_generate() -> None:
    plans, problems = all_plans(EXAMPLES, pass_folder=False)
    assert problems == []
    assert prefect_yaml(plans, version("prefect")) == TEXT, (
        "prefect.yaml is out of date: run `headwater deploy --prefect-yaml prefect.yaml`"
    )


def test_top_level_keys_are_known() -> None:
    assert unknown(set(CONFIG), PrefectYamlModel) == set()
    PrefectYamlModel.model_validate(CONFIG)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_deployment(deployment: dict[str, Any]) -> None:
    assert unknown(set(deployment), DeploymentConfig) == set()
    assert unknown(set(deployment["work_pool"]), WorkPoolConfig) == set()
    DeploymentConfig.model_validate(deployment)

    loaded = load_pipelines(EXAMPLES)[deployment["name"]]
    spec = loaded.spec
    streaming = spec.type == "streaming"  # a processor kept running by `headwater up`: no schedule
    module = "flows.stream" if streaming else "flows.pipelines"
    assert deployment["entrypoint"] == f"{module}.{deployment['name']}"  # the one generic entrypoint
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert flow.name == deployment["name"]
    flow.validate_parameters(deployment["parameters"])
    assert deployment["parameters"] == {"pipeline": deployment["name"]}

    stream_tag = ["headwater:stream"] if streaming else []
    assert deployment["tags"] == sorted({*spec.tags, "headwater", *stream_tag})
    assert deployment["description"] == spec.description
    assert deployment.get("concurrency_limit") == spec.concurrency
    schedules = deployment.get("schedules") or []
    assert len(schedules) == (1 if spec.schedule else 0)
    for schedule in schedules:
        assert spec.schedule is not None
        assert unknown(set(schedule), RawScheduleConfig) == set()
        RawScheduleConfig.model_validate(schedule)
        CronSim(schedule["cron"], datetime(2026, 1, 1))
        ZoneInfo(schedule["timezone"])
        assert (schedule["cron"], schedule["timezone"]) == (spec.schedule.cron, spec.schedule.timezone)
    triggers = deployment.get("triggers") or []
    assert len(triggers) == (1 if spec.triggers else 0)
    for trigger in triggers:
        parsed = DeploymentTriggerAdapter.validate_python(trigger)
        assert isinstance(parsed, DeploymentEventTrigger | DeploymentCompoundTrigger)
        assert unknown(set(trigger), type(parsed)) == set()
        assert spec.triggers is not None
        assert upstream_of(trigger) == spec.triggers.after
        flow.validate_parameters(trigger["parameters"])
        assert trigger["parameters"]["pipeline"] == deployment["name"]
    assert schedules or triggers or streaming, "a deployment that never runs by itself"


def test_every_pipeline_has_a_deployment_and_a_flow() -> None:
    import flows.pipelines as module
    import flows.stream as stream_module

    specs = load_pipelines(EXAMPLES)
    # a streaming spec is a long-lived processor: its deployment runs flows.stream, never on a schedule
    batch = {name for name, one in specs.items() if one.spec.type != "streaming"}
    assert "vitals_stream" in set(specs) - batch
    assert {d["name"] for d in DEPLOYMENTS} == set(specs)
    for name in specs:
        assert getattr(stream_module if name not in batch else module, name).name == name
    for one in (module, stream_module):
        with pytest.raises(AttributeError, match="no pipeline named 'no_such_pipeline'"):
            one.no_such_pipeline  # noqa: B018


def test_quality_monitor_deployment() -> None:
    (monitor,) = [d for d in ALL_DEPLOYMENTS if d["name"] == "quality_monitor"]
    assert unknown(set(monitor), DeploymentConfig) == set()
    flow = load_flow_from_entrypoint(monitor["entrypoint"])
    assert flow.name == "quality_monitor"
    flow.validate_parameters(monitor["parameters"])
    (schedule,) = monitor["schedules"]
    assert unknown(set(schedule), RawScheduleConfig) == set()
    assert RawScheduleConfig.model_validate(schedule).interval is not None


def test_a_misspelt_key_is_caught() -> None:
    """The check above can fail: Prefect itself accepts this silently."""
    bad = {**DEPLOYMENTS[1], "schedulez": DEPLOYMENTS[1]["schedules"]}
    DeploymentConfig.model_validate(bad)  # Prefect ignores it...
    assert unknown(set(bad), DeploymentConfig) == {"schedulez"}  # ...we do not
