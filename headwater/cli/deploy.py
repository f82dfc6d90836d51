"""`headwater deploy`, `pause`, `resume`: the specs become Prefect deployments, and a person stops
or restarts a pipeline's schedule (audited, as the console's buttons are). They talk to the Prefect
server at PREFECT_API_URL, or to the one `headwater up` started."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from headwater.cli.common import PIPELINES_HELP, table
from headwater.errors import PermanentError, SpecError
from headwater.settings import Settings


def use_server(settings: Settings) -> str:
    """The Prefect API to talk to: PREFECT_API_URL, else the server `headwater up` runs. Sets
    PREFECT_API_URL for this process (before Prefect is imported)."""
    from headwater.services import running_api_url

    url = os.environ.get("PREFECT_API_URL") or running_api_url(settings)
    if not url:
        raise PermanentError(
            "no Prefect server to talk to",
            hint="start one with `headwater up` (or set PREFECT_API_URL to an existing server)",
        )
    os.environ["PREFECT_API_URL"] = url
    return url


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.deploy import all_plans, prefect_yaml, upstream_of

    folder = Path(args.pipelines).resolve() if args.pipelines else settings.pipelines_dir
    if args.prefect_yaml:
        from importlib.metadata import version

        plans, problems = all_plans(folder, pass_folder=False)
        if problems:
            raise SpecError(problems)
        Path(args.prefect_yaml).write_text(prefect_yaml(plans, version("prefect")), encoding="utf-8")
        print(f"wrote {args.prefect_yaml}: {len(plans)} deployments")
        return 0
    plans, problems = all_plans(folder)
    url = use_server(settings)
    from headwater.orchestration import orchestration

    report = orchestration().apply_plans(plans, folder, prune=not args.keep_removed)
    by_name = {p.pipeline: p for p in plans}
    rows = []
    for what, names in (
        ("created", report.created),
        ("updated", report.updated),
        ("unchanged", report.unchanged),
        ("paused (spec removed)", report.paused),
    ):
        for name in names:
            plan = by_name.get(name)
            runs = ""
            if plan is not None:
                when = []
                if plan.schedule and "cron" in plan.schedule:
                    when.append(f"{plan.schedule['cron']} ({plan.schedule['timezone']})")
                elif plan.schedule:
                    when.append(f"every {plan.schedule['interval']:g} s")
                if plan.triggers:
                    when.append("after " + ", ".join(n for t in plan.triggers for n in upstream_of(t)))
                runs = "; ".join(when) or ("kept running by headwater up" if plan.streaming else "on demand")
            rows.append((name, what, runs, plan.work_pool if plan else "", plan.version if plan else ""))
    print(f"Prefect API {url}")
    if report.pools:
        print(f"made process work pool(s): {', '.join(report.pools)}")
    print(table(rows, ["deployment", "", "runs", "pool", "version"]))
    if problems:
        print(SpecError(problems), file=sys.stderr)
        print(
            f"{len({p.file for p in problems})} spec(s) not deployed: fix them and deploy again",
            file=sys.stderr,
        )
        return 2
    return 0


def cmd_pause(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.access.audit import AuditEntry, record
    from headwater.access.roles import Action
    from headwater.store import Store

    paused = args.command == "pause"
    action = Action.PAUSE_PIPELINE if paused else Action.RESUME_PIPELINE
    who = os.environ.get("USER") or getpass.getuser()
    store = Store(settings.database_url).migrate()
    try:
        url = use_server(settings)
        from headwater.control import LocalOrchestrator
        from headwater.orchestration import orchestration

        orchestrator, local = orchestration(), LocalOrchestrator(settings.home, settings.pipelines_dir)
        try:
            orchestrator.set_paused(url, local, args.pipeline, paused)
        except Exception as exc:
            record(
                store.engine,
                AuditEntry(
                    who, None, action, args.pipeline, "failed", f"{type(exc).__name__}: {exc}", None, "cli"
                ),
                datetime.now(UTC),
            )
            raise
        record(
            store.engine,
            AuditEntry(who, None, action, args.pipeline, "ok", None, None, "cli"),
            datetime.now(UTC),
        )
    finally:
        store.dispose()
    print(f"{args.pipeline}: schedule {'paused' if paused else 'resumed'} (deployment on {url})")
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("deploy", help="make every spec a Prefect deployment (schedule, triggers, pool)")
    p.add_argument("--pipelines", help=PIPELINES_HELP)
    p.add_argument(
        "--keep-removed",
        action="store_true",
        help="leave deployments whose spec is gone running (default: pause)",
    )
    p.add_argument(
        "--prefect-yaml",
        metavar="PATH",
        help="write the deployments as a prefect.yaml (for `prefect deploy --all`) instead of deploying",
    )
    p.set_defaults(func=cmd_deploy)
    for verb, text in (("pause", "stop a pipeline's schedule"), ("resume", "restart a pipeline's schedule")):
        p = sub.add_parser(verb, help=f"{text} (its deployment on the Prefect server; audited)")
        p.add_argument("pipeline", help="the pipeline's name")
        p.set_defaults(func=cmd_pause)
