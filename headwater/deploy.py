"""What each spec asks of the orchestrator, as data: its deployment (schedule and time zone, triggers
on other pipelines, concurrency, work pool, queue and priority), versioned by the spec's hash. One
generic entrypoint serves every spec, so adding a pipeline is adding its YAML file. The same plans
render `prefect.yaml` for teams that deploy with `prefect deploy --all`; flows/deploy.py applies them
to a Prefect server (`headwater deploy`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from headwater.errors import SpecError, SpecProblem
from headwater.spec.loader import LoadedSpec, load_pipeline, spec_files
from headwater.spec.models import PipelineSpec

ENTRYPOINT_MODULE = "flows.pipelines"
"""Every deployment's entrypoint is `flows.pipelines.<pipeline>`: that module makes the flow of any
spec on demand (a module path, so the worker imports the installed package: no code to copy)."""

STREAM_ENTRYPOINT_MODULE = "flows.stream"
"""A streaming spec's deployment runs `flows.stream.<pipeline>`: its processor as one long-lived flow
run, which `headwater up` keeps running (headwater/streams/keeper.py)."""

DEFAULT_POOL = "headwater"
MANAGED_TAG = "headwater"
"""Every deployment `headwater deploy` makes carries this tag: how it finds the ones whose spec is gone."""
STREAM_TAG = "headwater:stream"
"""The deployments of streaming specs carry this tag too: how `headwater up` finds what to keep running."""


@dataclass(frozen=True)
class DeploymentPlan:
    pipeline: str
    description: str
    version: str
    """The spec's hash: a changed spec changes it."""
    tags: list[str]
    parameters: dict[str, Any]
    schedule: dict[str, Any] | None
    """{"cron", "timezone"} or {"interval": seconds}."""
    triggers: list[dict[str, Any]]
    """Deployment triggers in Prefect's own form (what prefect.yaml's `triggers:` holds)."""
    concurrency: int | None
    work_pool: str
    queue: str
    priority: int | None
    spec_path: Path | None = field(compare=False)
    """None: a service of Headwater's own (the monitor), not a pipeline."""
    entrypoint: str = ""
    """Default `flows.pipelines.<pipeline>` (`flows.stream.<pipeline>` for a stream processor)."""
    streaming: bool = False
    """A stream processor: no schedule, one flow run that lives (kept running by `headwater up`)."""

    def __post_init__(self) -> None:
        if not self.entrypoint:
            module = STREAM_ENTRYPOINT_MODULE if self.streaming else ENTRYPOINT_MODULE
            object.__setattr__(self, "entrypoint", f"{module}.{self.pipeline}")

    @property
    def full_name(self) -> str:
        """Flows and deployments share the pipeline's name."""
        return f"{self.pipeline}/{self.pipeline}"


MONITOR = DeploymentPlan(
    pipeline="quality_monitor",
    description="Retrain every pipeline's anomaly model; advance alerts (escalations, silences, quiet hours)",
    version="1",
    tags=["headwater", "monitor"],
    parameters={"history_runs": 500},
    schedule={"interval": 600.0},
    triggers=[],
    concurrency=1,
    work_pool=DEFAULT_POOL,
    queue="default",
    priority=None,
    spec_path=None,
    entrypoint="flows.quality_monitor.quality_monitor",
)
"""Headwater's own scheduled flow, deployed with the pipelines."""


EVENT_PREFIX = "headwater.pipeline."
"""Every pipeline run ends by emitting `headwater.pipeline.<status>` on resource
`headwater.pipeline.<name>` (flows/pipeline.py): what triggers match. Not Prefect's own
`prefect.flow-run.Completed`: a flow run the scheduler created has no `Scheduled` event, so Prefect's
trigger service holds its later state events back (waiting for the missing one) for 15 minutes."""
UPSTREAM_DONE = [f"{EVENT_PREFIX}completed", f"{EVENT_PREFIX}completed_with_warnings"]


@dataclass
class DeployReport:
    """What applying the plans to the orchestrator did (flows/deploy.py: `apply_plans`)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)
    """Deployments whose spec is gone."""
    pools: list[str] = field(default_factory=list)
    """Work pools made because a spec named them."""


def pipeline_resource(pipeline: str) -> str:
    return f"{EVENT_PREFIX}{pipeline}"


def _on_completed(upstream: list[str]) -> dict[str, Any]:
    ids = [pipeline_resource(u) for u in upstream]
    return {
        "type": "event",
        "match": {"prefect.resource.id": ids[0] if len(ids) == 1 else ids},
        "expect": list(UPSTREAM_DONE),
        "posture": "Reactive",
        "threshold": 1,
        "within": 0,
    }


def upstream_of(trigger: dict[str, Any]) -> list[str]:
    """The pipelines a trigger (as triggers_of makes it) waits for."""
    names: list[str] = []
    for one in trigger.get("triggers", [trigger]):
        value = one["match"]["prefect.resource.id"]
        names += [v.removeprefix(EVENT_PREFIX) for v in (value if isinstance(value, list) else [value])]
    return names


def triggers_of(spec: PipelineSpec) -> list[dict[str, Any]]:
    """The spec's `triggers:` as Prefect deployment triggers: a run of an upstream pipeline that
    completed (with or without warnings; however it was started) starts a `triggered` run."""
    if spec.triggers is None:
        return []
    after = list(spec.triggers.after)
    parameters = {"pipeline": spec.name, "execution_type": "triggered"}
    name = (
        f"{spec.name} after {' and '.join(after) if spec.triggers.require == 'all' else ' or '.join(after)}"
    )
    if spec.triggers.require == "any" or len(after) == 1:
        return [
            {
                **_on_completed(after),
                "name": name,
                "description": f"a run of {' or '.join(after)} completed",
                "enabled": True,
                "parameters": parameters,
            }
        ]
    return [
        {
            "type": "compound",
            "name": name,
            "description": f"runs of {', '.join(after)} all completed within {spec.triggers.within:g} s",
            "enabled": True,
            "require": "all",
            "within": spec.triggers.within,
            "triggers": [_on_completed([u]) for u in after],
            "parameters": parameters,
        }
    ]


def plan_for(loaded: LoadedSpec, *, pipelines_dir: Path | None = None) -> DeploymentPlan:
    """The deployment of one spec. `pipelines_dir`: passed to every run, so a worker finds the spec
    wherever it was started (None: the worker's HEADWATER_PIPELINES). A streaming spec's deployment
    has no schedule and no trigger: `headwater up` starts its one flow run, and a new one when it ends."""
    spec = loaded.spec
    streaming = spec.type == "streaming"
    schedule: dict[str, Any] | None = None
    if spec.schedule is not None:
        if spec.schedule.cron is not None:
            schedule = {"cron": spec.schedule.cron, "timezone": spec.schedule.timezone}
        else:
            schedule = {"interval": spec.schedule.interval}
    parameters: dict[str, Any] = {"pipeline": spec.name}
    if pipelines_dir is not None:
        parameters["pipelines_dir"] = str(pipelines_dir)
    return DeploymentPlan(
        pipeline=spec.name,
        description=spec.description,
        version=loaded.digest[:16],
        tags=sorted({*spec.tags, MANAGED_TAG, *([STREAM_TAG] if streaming else [])}),
        parameters=parameters,
        schedule=schedule,
        triggers=triggers_of(spec),
        concurrency=spec.concurrency,
        work_pool=spec.work_pool.name,
        queue=spec.work_pool.queue,
        priority=spec.work_pool.priority,
        spec_path=loaded.path,
        streaming=streaming,
    )


def plan_all(
    pipelines_dir: str | Path, *, pass_folder: bool = True
) -> tuple[list[DeploymentPlan], list[SpecProblem]]:
    """A plan for every spec that loads (unset secrets and required parameters are a run's business,
    not the deployment's), and the problems of those that do not. A trigger on a pipeline no spec
    declares is a problem of the spec that names it."""
    folder = Path(pipelines_dir).resolve()
    loaded: list[LoadedSpec] = []
    problems: list[SpecProblem] = []
    files = spec_files(folder)
    if not files:
        problems.append(
            SpecProblem(
                str(folder),
                "(folder)",
                "no *.yaml pipeline specs found",
                "add a spec, or point at its folder",
            )
        )
    for path in files:
        try:
            # no environment: secrets stay references (they are a run's business, and must not
            # change the version, which is the hash of what the spec says)
            loaded.append(load_pipeline(path, {}, secrets_may_be_unset=True, params_may_be_unset=True))
        except SpecError as exc:
            problems += exc.problems
    names = [one.spec.name for one in loaded]
    for one in loaded:
        if names.count(one.spec.name) > 1:
            problems.append(
                SpecProblem(
                    str(one.path), "name", f"pipeline {one.spec.name!r} is defined twice", "rename one"
                )
            )
    ok: list[DeploymentPlan] = []
    known = set(names)
    for one in loaded:
        missing = [u for u in (one.spec.triggers.after if one.spec.triggers else []) if u not in known]
        if missing:
            problems.append(
                SpecProblem(
                    str(one.path),
                    "triggers.after",
                    f"no pipeline named {', '.join(missing)}",
                    f"choose from: {', '.join(sorted(known - {one.spec.name}))}",
                    one.line("triggers", "after"),
                )
            )
            continue
        if names.count(one.spec.name) == 1:
            ok.append(plan_for(one, pipelines_dir=folder if pass_folder else None))
    return sorted(ok, key=lambda p: p.pipeline), problems


def all_plans(
    pipelines_dir: str | Path, *, pass_folder: bool = True
) -> tuple[list[DeploymentPlan], list[SpecProblem]]:
    """The pipelines' plans and the monitor's."""
    plans, problems = plan_all(pipelines_dir, pass_folder=pass_folder)
    return [*plans, MONITOR], problems


# ------------------------------------------------------------------ prefect.yaml

PREFECT_YAML_HEADER = """\
# GENERATED from the specs in pipelines/ by `headwater deploy --prefect-yaml prefect.yaml`: do not edit
# (tests/test_prefect_yaml.py checks it matches). `headwater deploy` does the same without this file;
# teams that deploy with Prefect's own CLI run, from the repository:
#
#   prefect work-pool create headwater --type process
#   HEADWATER_REPO=$PWD prefect deploy --all
#   prefect worker start --pool headwater
"""


def prefect_yaml(plans: Iterable[DeploymentPlan], prefect_version: str) -> str:
    """prefect.yaml for `prefect deploy --all`: the same deployments as `headwater deploy` makes."""
    deployments = []
    for plan in plans:
        entry: dict[str, Any] = {
            "name": plan.pipeline,
            "description": plan.description,
            "version": plan.version,
            "entrypoint": plan.entrypoint,
            "parameters": plan.parameters,
            "tags": plan.tags,
        }
        if plan.schedule is not None:
            entry["schedules"] = [{**plan.schedule, "active": True}]
        if plan.triggers:
            entry["triggers"] = plan.triggers
        if plan.concurrency is not None:
            entry["concurrency_limit"] = plan.concurrency
        entry["work_pool"] = {
            "name": plan.work_pool,
            "work_queue_name": plan.queue,
            "job_variables": {"env": {"PREFECT_LOGGING_EXTRA_LOGGERS": "headwater"}},
        }
        deployments.append(entry)
    doc = {
        "name": "headwater",
        "prefect-version": prefect_version,
        "build": None,
        "push": None,
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $HEADWATER_REPO }}"}}],
        "deployments": deployments,
    }
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    return PREFECT_YAML_HEADER + "\n" + body
