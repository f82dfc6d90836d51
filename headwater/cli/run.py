"""`headwater run`: check the spec, record the run, run it in a watched worker process, and print
one clean summary from the run record.

The command itself stays light: it loads the spec (a refusal is recorded and printed, nothing
starts), records the run under an id (so the console can link to it at once), and starts the
worker (`headwater run` again, with HEADWATER_WORKER=1) that runs the Prefect flow. The worker's
output (Prefect's logs, tracebacks) goes to a log file under $HEADWATER_HOME/logs, or to the
terminal with --verbose. Whatever happens to the worker, its children are ended and a run it did
not finish is recorded `crashed` with how the worker ended."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.cli.common import PIPELINES_HELP, param_arg
from headwater.settings import Settings

if TYPE_CHECKING:
    from headwater.supervise import WorkerOutcome


TEMPORARY_API_ENV = "HEADWATER_TEMPORARY_API"


def worker_env() -> dict[str, str]:
    """The environment for a worker: ours, plus the Prefect API this process talks to when it was
    set in Prefect's settings rather than the environment (e.g. a test harness)."""
    env = dict(os.environ)
    if not env.get("PREFECT_API_URL"):
        from headwater.orchestration import settings_api_url

        url = settings_api_url()  # None unless Prefect's settings are loaded in this process
        if url:
            env["PREFECT_API_URL"] = url
    return env


def log_path(settings: Settings, pipeline: str, run_id: str) -> Path:
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs / f"{pipeline}-{datetime.now():%Y%m%dT%H%M%S}-{run_id[:8]}.log"


def worker_argv(args: argparse.Namespace, run_id: str, pipelines_dir: Path) -> list[str]:
    argv = [sys.executable, "-m", "headwater.cli", "run", args.pipeline, "--pipelines", str(pipelines_dir)]
    argv += ["--run-id", run_id]
    if args.execution_type:
        argv += ["--execution-type", args.execution_type]
    for key, value in args.param:
        argv += ["--param", f"{key}={value}"]
    return argv


def supervised(argv: list[str], log: Path, *, verbose: bool) -> WorkerOutcome:
    """Run `argv` as a watched worker, with its output in `log` (or here, `verbose`). Without a
    Prefect API in the environment, a temporary one is started for it from here, so that it ends
    with this command whatever happens to the worker."""
    from headwater.services import env_with_server, run_in_runner, runner_for
    from headwater.supervise import WORKER_ENV, run_worker

    settings = Settings.from_env()
    env = env_with_server(settings, worker_env())  # `headwater up`'s server, when it runs
    runner = runner_for(settings, env)
    if runner is not None and argv[1:3] == ["-m", "headwater.cli"]:
        # a fork of up's warm runner: no interpreter start, no imports
        with log.open("ab") as out:
            fd = out.fileno()
            fds = (1, 2) if verbose else (fd, fd)
            return run_in_runner(runner, argv[3:], {**env, WORKER_ENV: "1"}, *fds)
    api = None
    if not env.get("PREFECT_API_URL"):
        from headwater.orchestration import orchestration

        print(
            "starting a temporary Prefect API for this command (about 10 s; `headwater up` keeps "
            "one running, or set PREFECT_API_URL to use a Prefect server)",
            file=sys.stderr,
            flush=True,
        )
        api = orchestration().start_temporary_api(log)
        env["PREFECT_API_URL"] = api.url
        env[TEMPORARY_API_ENV] = "1"  # it ends with this command: nothing to point people at
    try:
        with log.open("ab") as out:
            target = None if verbose else out
            return run_worker(argv, env, stdout=target, stderr=target)
    finally:
        if api is not None:
            api.stop()


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.orchestration import orchestration
    from headwater.supervise import is_worker

    pipelines_dir = Path(args.pipelines or settings.pipelines_dir)
    params = dict(args.param) or None
    settings.ensure_home()
    settings.use_home_secrets()
    if is_worker():
        result = orchestration().run_pipeline(
            args.pipeline, pipelines_dir, args.execution_type, params=params, run_id=args.run_id
        )
        return 1 if result["status"] == "failed" else 0
    return supervise_run(args, settings, pipelines_dir, params)


def supervise_run(
    args: argparse.Namespace, settings: Settings, pipelines_dir: Path, params: dict[str, Any] | None
) -> int:
    from headwater.pipeline.launch import RunRefused, prepare_run
    from headwater.store import Store

    store = Store(settings.database_url).migrate()
    try:
        try:
            run_id, _ = prepare_run(
                store,
                pipelines_dir,
                args.pipeline,
                params=params,
                execution_type=args.execution_type or "manual",
                warehouse_url=settings.warehouse_url,
                run_id=args.run_id or str(uuid.uuid4()),
            )
        except RunRefused as exc:
            print(f"{args.pipeline}: refused, nothing ran  (run {exc.run_id[:8]}, recorded failed)")
            print(f"{exc}", file=sys.stderr)
            return 2
        log = log_path(settings, args.pipeline, run_id)
        outcome = supervised(worker_argv(args, run_id, pipelines_dir), log, verbose=args.verbose)
        # a worker that died (segfault, OOM killer, SIGKILL) left its run 'running': say how it ended
        reason = f"the run's process {outcome.pid} {outcome.describe()} before finishing the run"
        store.mark_run_crashed(run_id, f"{reason} (log: {log})")
        run = store.run(run_id)
    finally:
        store.dispose()
    if run is None:  # cannot happen: the run was recorded before the worker started
        print(f"{args.pipeline}: no record of run {run_id}; log: {log}", file=sys.stderr)
        return 1
    print_run(run, verbose=args.verbose, log=None if args.verbose else log)
    return 1 if run["status"] in ("failed", "crashed") else 0


def print_run(run: dict[str, Any], *, verbose: bool = False, log: Path | None = None) -> None:
    """One summary of a finished run, from its record: status, rows, the error once, warnings that
    are not the same failure again, and where the details are."""
    print(f"{run['pipeline_name']}: {run['status']}  (run {run['id']})")
    print(
        f"  rows read {run['records_processed']}, loaded {run['records_loaded']} "
        f"(inserted {run['records_inserted']}, updated {run['records_updated']}), "
        f"quarantined {run['records_quarantined']}, retries {run['retry_count']}"
    )
    if run.get("quality_score") is not None:
        print(f"  quality score {run['quality_score']:g} / 100")
    failed_step = run.get("failed_step")
    if run.get("error_message"):
        where = f"at step {failed_step}" if failed_step else "before it finished"
        print(f"  failed {where}: {run['error_type']}: {run['error_message']}")
    for warning in run.get("warnings") or []:
        if failed_step and warning.startswith(f"step {failed_step} failed"):
            continue  # the failure itself, said above
        print(f"  warning: {warning}")
    if log is not None and run["status"] not in ("completed",):
        print(f"  details: headwater runs --run {run['id'][:8]}   log: {log}")


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("run", help="run one pipeline now and print its summary")
    p.add_argument("pipeline", help="the pipeline's name (its spec's name:)")
    p.add_argument("--pipelines", help=PIPELINES_HELP)
    p.add_argument(
        "--execution-type",
        choices=["manual", "scheduled", "triggered", "retry"],
        help="how the run is recorded (default: manual)",
    )
    p.add_argument(
        "--param",
        action="append",
        type=param_arg,
        default=[],
        metavar="KEY=VALUE",
        help="a value for a parameter the spec declares (repeatable); the rest take their defaults",
    )
    p.add_argument(
        "--run-id", help="record the run under this id (a UUID), e.g. to link to it before it ends"
    )
    p.add_argument(
        "--verbose", action="store_true", help="stream the run's log (Prefect's, with tracebacks) here"
    )
    p.set_defaults(func=cmd_run)
