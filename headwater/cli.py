"""The `headwater` command. Imports stay lazy: `validate` never loads Prefect."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from headwater.errors import HeadwaterError, SpecError
from headwater.settings import Settings


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def examples_dir() -> Path:
    """The example pipelines shipped beside the package (repo checkout or editable install)."""
    return Path(__file__).resolve().parent.parent / "pipelines"


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.spec.loader import load_pipeline, spec_files

    targets = [Path(p) for p in args.paths] or [settings.pipelines_dir]
    files = [f for t in targets for f in spec_files(t)] if all(t.exists() for t in targets) else []
    missing = [t for t in targets if not t.exists()]
    for t in missing:
        print(f"{t}: no such file or folder (fix: give a spec file or a folder of *.yaml specs)")
    if not files and not missing:
        print(f"{', '.join(map(str, targets))}: no *.yaml pipeline specs found")
        return 1
    problems = len(missing)
    for path in files:
        try:
            loaded = load_pipeline(path, secrets_may_be_unset=True, params_may_be_unset=True, validating=True)
        except SpecError as exc:
            problems += len(exc.problems)
            for problem in exc.problems:
                print(problem)
            continue
        print(f"ok  {path}  ({loaded.spec.name}: {len(loaded.spec.steps)} steps)")
        for note in loaded.notes:
            print(f"    note: {note}")
    if settings.alerts_dir is not None and not args.paths:
        from headwater.alerting.config import check_alerts

        alert_problems, alert_notes = check_alerts(settings.alerts_dir)
        problems += len(alert_problems)
        for problem in alert_problems:
            print(problem)
        if not alert_problems:
            print(f"ok  {settings.alerts_dir}  (alert channels and rules)")
        for alert_note in alert_notes:
            print(f"    note: {alert_note}")
    if problems:
        print(f"\n{problems} problem(s) found")
    return 1 if problems else 0


def param_arg(text: str) -> tuple[str, str]:
    """`--param key=value`: the value stays text; the spec's declared type decides what it means."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value (e.g. --param feed=data/prices.csv)")
    return key.strip(), value


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.cli_run import cmd_run as run

    return run(args, settings)


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.store import Store

    store = Store(settings.database_url).migrate()
    if args.run:
        run, candidates = store.find_run(args.run)
        if not run:
            if candidates:
                shown = ", ".join(candidates)
                print(f"run id {args.run!r} is ambiguous: it starts {len(candidates)} runs ({shown})")
                print("  give more of the id")
            else:
                print(f"no run {args.run!r} (give the run id or its first 8 characters: see headwater runs)")
            return 1
        args.run = run["id"]
        for key in (
            "pipeline_name",
            "status",
            "execution_type",
            "flow_run_id",
            "started_at",
            "ended_at",
            "duration_seconds",
            "records_processed",
            "records_loaded",
            "records_inserted",
            "records_updated",
            "records_quarantined",
            "quality_score",
            "retry_count",
            "peak_memory_mb",
            "cpu_seconds",
            "failed_step",
            "error_type",
            "error_message",
        ):
            print(f"{key:18} {run[key]}")
        print(f"{'parameters':18} {_params_text(run['parameters'])}")
        step_rows = [
            (
                s["step_name"],
                s["step_type"],
                s["status"],
                s["attempts"],
                s["records_in"],
                s["records_out"],
                _secs(s["duration_seconds"]),
                _mb(s["peak_memory_mb"]),
                s["error_message"] or "",
            )
            for s in store.steps(args.run)
        ]
        print()
        print(
            table(step_rows, ["step", "type", "status", "attempts", "in", "out", "time", "peak MB", "error"])
        )
        checks = [
            (
                c["rule_name"],
                c["action"],
                c["records_failed"],
                f"{c['pass_rate']:.2f}",
                "yes" if c["success"] else "NO",
                (c["remediation"] or "")[:70],
            )
            for c in store.quality_checks(args.run)
        ]
        if checks:
            print()
            print(table(checks, ["rule", "action", "failed", "pass %", "passed", "hint"]))
            _print_score(store.quality_checks(args.run))
        return 0
    runs = store.runs(args.pipeline, args.limit)
    rows = [
        (
            r["id"][:8],
            r["pipeline_name"],
            r["execution_type"],
            r["status"],
            r["started_at"].strftime("%Y-%m-%d %H:%M:%S"),
            _secs(r["duration_seconds"]),
            r["records_processed"],
            r["records_loaded"],
            r["records_inserted"],
            r["records_updated"],
            r["records_quarantined"] or "",
            "" if r["quality_score"] is None else f"{r['quality_score']:.1f}",
            r["retry_count"],
            f"{r['failed_step']}: {r['error_type']}" if r["failed_step"] else (r["error_type"] or ""),
        )
        for r in runs
    ]
    print(
        table(
            rows,
            [
                "run",
                "pipeline",
                "type",
                "status",
                "started (UTC)",
                "time",
                "read",
                "loaded",
                "inserted",
                "updated",
                "quarantined",
                "score",
                "retries",
                "failure",
            ],
        )
    )
    return 0


def _print_score(checks: list[dict[str, Any]]) -> None:
    """How the run's quality score was made: each rule's weight, severity, pass rate and points."""
    from headwater.quality.score import explain

    explained = explain(checks)
    if explained.score is None:
        return
    rows = [
        (
            p.rule,
            p.suite,
            p.severity,
            f"{p.weight:g}",
            f"{p.effective_weight:g}",
            f"{p.share:.1f}",
            f"{p.pass_rate:.2f}",
            f"{p.contribution:.2f}",
            f"{-p.lost:.2f}" if p.lost >= 0.005 else "",
        )
        for p in explained.parts
    ]
    print()
    print(f"quality score {explained.score:g} = the weighted mean of the rules' pass rates")
    print("  (weight x severity factor: info 0.5, warning 1, error 2, critical 3)")
    print(
        table(
            rows, ["rule", "suite", "severity", "weight", "x severity", "share %", "pass %", "points", "lost"]
        )
    )
    print(f"  {explained.summary()}")


def _params_text(values: dict[str, Any] | None) -> str:
    if not values:
        return "(none)"
    import json

    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in values.items())


def _secs(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def _mb(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def demo_salt(settings: Settings) -> str | None:
    """The demo's HASH_SALT when none is set: a random one kept for this home (mode 600)."""
    if os.environ.get("HASH_SALT"):
        return None
    import secrets

    path = settings.home / "secrets" / "hash_salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    os.environ["HASH_SALT"] = path.read_text().strip()
    return str(path)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.cli_run import run_flow
    from headwater.connections import display_url

    pipelines = Path(os.environ.get("HEADWATER_PIPELINES") or examples_dir())
    names = ["flights_daily", "carrier_monthly", "flights_clean", "vendor_prices", "claims_deidentified"]
    print(f"Headwater demo: {', '.join(names)} from {pipelines}")
    salt_file = demo_salt(settings)
    if salt_file:
        print(f"  HASH_SALT is not set: the claims example uses the salt kept for this home in {salt_file}")
    print(
        f"  warehouse {display_url(settings.warehouse_url)}\n  store     {display_url(settings.database_url)}"
    )
    rows, failed = [], False
    for name in names:
        start = time.monotonic()
        result = run_flow(name, pipelines, "manual")
        failed |= result["status"] == "failed"
        rows.append(
            (
                name,
                result["status"],
                result["records_processed"],
                result["records_loaded"],
                result["records_inserted"],
                result["records_updated"],
                f"{time.monotonic() - start:.1f}s",
            )
        )
        for warning in result.get("warnings") or []:
            print(f"  {name}: warning: {warning}")
        if result.get("failed_step"):
            print(f"  {name}: failed at {result['failed_step']}: {result['error_message']}")
    print()
    print(table(rows, ["pipeline", "status", "rows in", "rows out", "inserted", "updated", "duration"]))
    api = None if os.environ.get("HEADWATER_TEMPORARY_API") else os.environ.get("PREFECT_API_URL")
    ui = api.removesuffix("/api") if api else "http://127.0.0.1:4200 after `prefect server start`"
    warehouse = settings.warehouse_url.removeprefix("sqlite:///")
    print(f"""
The data:     {display_url(settings.warehouse_url)}
              tables carrier_daily, carrier_monthly, flights_clean, vendor_prices, claims_deid
Quarantine:   headwater quarantine list --pipeline flights_clean
              e.g. sqlite3 {warehouse} 'SELECT * FROM carrier_daily LIMIT 5'
Run history:  headwater runs      (one run: headwater runs --run <id>)
Console:      headwater console  (make console; http://127.0.0.1:8501)
Prefect UI:   {ui}""")
    return 1 if failed else 0


def _warehouse_engines(pipeline: str, settings: Settings, pipelines_dir: str | None = None) -> dict[str, Any]:
    """Target table -> engine of every load step of the pipeline (URL warehouses; blocks need a flow)."""
    from headwater.connections import Connections
    from headwater.spec.loader import find_pipeline
    from headwater.spec.models import LoadStep

    loaded = find_pipeline(pipelines_dir or settings.pipelines_dir, pipeline)
    connections = Connections(settings.warehouse_url)
    return {
        s.destination.table: connections.engine(s.destination.warehouse or loaded.spec.warehouse)
        for s in loaded.spec.steps
        if isinstance(s, LoadStep)
    }


def cmd_quarantine(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from headwater.cli_run import print_run, run_flow
    from headwater.load.quarantine import count_quarantined, read_quarantined
    from headwater.store import Store

    engines = _warehouse_engines(args.pipeline, settings, args.pipelines)
    if args.action == "replay":
        before = {t: count_quarantined(e, args.pipeline, t) for t, e in engines.items()}
        result = run_flow(args.pipeline, Path(args.pipelines or settings.pipelines_dir), None, replay=True)
        after = {t: count_quarantined(e, args.pipeline, t) for t, e in engines.items()}
        store = Store(settings.database_url)
        try:
            run = store.run(result["run_id"])
        finally:
            store.dispose()
        if run is not None:  # it is: the flow recorded it
            print_run(run)
        for target, count in before.items():
            moved = count - after[target]
            print(
                f"  {target}: {count} row(s) were in quarantine, {moved} loaded now, "
                f"{after[target]} still quarantined"
            )
        return 1 if result["status"] == "failed" else 0
    records = [
        r
        for target, engine in engines.items()
        for r in read_quarantined(engine, args.pipeline, target, status=None if args.all else "quarantined")
    ]
    if args.action == "show":
        match = [r for r in records if r["id"] == args.id]
        if not match:
            print(f"no quarantined row {args.id} in {args.pipeline}")
            return 1
        r = match[0]
        for key in ("id", "target_table", "status", "run_id", "quarantined_at", "replay_run_id", "reason"):
            print(f"{key:15} {r[key]}")
        print(f"{'rules':15} {', '.join(json.loads(r['rules']))}")
        print(f"{'values':15} {r['masked_values']}")
        return 0
    rows = [
        (
            r["id"],
            r["target_table"],
            r["status"],
            ", ".join(json.loads(r["rules"])),
            r["masked_values"][:60],
            str(r["quarantined_at"])[:19],
        )
        for r in records[: args.limit]
    ]
    print(table(rows, ["id", "table", "status", "rules", "values", "quarantined (UTC)"]))
    print(f"\n{len(records)} row(s)" + (f", first {args.limit} shown" if len(records) > args.limit else ""))
    return 0


def cmd_profile(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.quality.profile import draft_suite, profile, render_profile, write_draft_suite

    name, frame = _profile_target(args.target, settings)
    profiles = profile(frame)
    print(render_profile(profiles))
    if args.suite:
        doc = draft_suite(name, frame, profiles)
        write_draft_suite(Path(args.suite), doc)
        print(f"\ndraft suite with {len(doc['expectations'])} rule(s) written to {args.suite}")
    return 0


def _profile_target(target: str, settings: Settings) -> tuple[str, Any]:
    """`pipeline:source` (a source of a spec), a file path, or a warehouse table."""
    import polars as pl

    from headwater.connections import Connections
    from headwater.extract import extract_source
    from headwater.spec.loader import find_pipeline

    if ":" in target and not Path(target).exists():
        pipeline, source = target.split(":", 1)
        loaded = find_pipeline(settings.pipelines_dir, pipeline)
        if source not in loaded.spec.sources:
            raise HeadwaterError(
                f"pipeline {pipeline} has no source {source!r} (it has: {', '.join(loaded.spec.sources)})"
            )
        result = extract_source(
            source,
            loaded.spec.sources[source],
            base_dir=loaded.base_dir,
            connections=Connections(settings.warehouse_url),
            warehouse=loaded.spec.warehouse,
        )
        return source, result.frame
    path = Path(target)
    if path.exists():
        from headwater.extract.files import read_files
        from headwater.spec.models import FileSource

        return path.stem, read_files(path.stem, FileSource(kind="file", path=str(path.resolve())), Path.cwd())
    import sqlalchemy as sa

    engine = sa.create_engine(settings.warehouse_url)
    try:
        if not sa.inspect(engine).has_table(target):
            raise HeadwaterError(f"{target!r} is not a pipeline:source, a file, or a table in the warehouse")
        return target, pl.read_database(
            sa.select(
                sa.table(target, *[sa.column(c["name"]) for c in sa.inspect(engine).get_columns(target)])
            ),
            engine,
        )
    finally:
        engine.dispose()


def cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.cli_alerts import cmd_alerts as alerts

    return alerts(args, settings, table)


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.access.commands import run_users_command
    from headwater.store import Store

    store = Store(settings.database_url).migrate()
    try:
        return run_users_command(args, store.engine, table)
    finally:
        store.dispose()


def console_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "console"


def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.access.commands import ensure_first_admin
    from headwater.store import Store

    settings.ensure_home()
    store = Store(settings.database_url).migrate()
    try:
        created = ensure_first_admin(store.engine, settings.home)
    finally:
        store.dispose()
    if created:
        print(f"No console users yet: created user 'admin' (system_admin); its password is in {created}")
        print("  add people with: headwater users add NAME --role data_analyst|data_engineer|system_admin")
    app = console_dir() / "streamlit_app.py"
    print(
        f"Headwater console on http://{args.address}:{args.port}  (store {settings.database_url.split('://')[0]})"
    )
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        f"--server.port={args.port}",
        f"--server.address={args.address}",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=minimal",
        "--theme.base=light",
        "--theme.primaryColor=#0b6e99",
    ]
    from headwater.services import running_api_url

    if not os.environ.get("PREFECT_API_URL") and (url := running_api_url(settings)):
        os.environ["PREFECT_API_URL"] = url  # `headwater up` runs: run now and pause go through it
        print(f"  through the Prefect server `headwater up` runs: {url}")
    sys.stdout.flush()
    os.execv(sys.executable, command)
    return 0  # not reached


def cmd_transforms(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.transform import docs

    if args.markdown:
        print(docs.markdown(), end="")
        return 0
    rows = docs.listing()
    print(table(rows, ["op", "category", "description"]))
    print(f"\n{len(rows)} ops; parameters and examples: docs/transforms.md (headwater transforms --markdown)")
    return 0


DESCRIPTION = """\
Headwater runs the data pipelines you declare in YAML (pipelines/*.yaml): it extracts from files,
SQL databases and REST APIs, transforms with Polars, checks quality, loads SQLite or PostgreSQL in
one transaction per load, and records every run.

Start with:  headwater demo            (the examples, on embedded SQLite)
             headwater validate        (check your specs: each problem names file:line and the fix)
             headwater run NAME        (run one pipeline now)
             headwater runs            (what ran, and how it went)
"""

EPILOG = """\
Settings come from the environment: HEADWATER_HOME (default ~/.headwater), HEADWATER_DATABASE_URL,
HEADWATER_WAREHOUSE_URL, HEADWATER_PIPELINES (default ./pipelines), HEADWATER_ALERTS,
PREFECT_API_URL. Exit codes: 0 done, 1 a run or check failed, 2 refused before it started."""

PIPELINES_HELP = "folder of pipeline specs (default: $HEADWATER_PIPELINES or ./pipelines)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headwater",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--verbose",
        dest="verbose_all",
        action="store_true",
        help="show tracebacks, and a run's full log instead of only its summary",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("validate", help="check pipeline specs; each problem names file, line, field and fix")
    p.add_argument(
        "paths", nargs="*", help="spec files or folders (default: $HEADWATER_PIPELINES or ./pipelines)"
    )
    p.set_defaults(func=cmd_validate)
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
    p = sub.add_parser("runs", help="run history, or one run with its steps, quality checks and score")
    p.add_argument("--pipeline", help="only this pipeline's runs")
    p.add_argument("--run", metavar="RUN_ID", help="show one run: its id, or the 8-character short id")
    p.add_argument("--limit", type=int, default=20, help="how many runs to list (default 20)")
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("quarantine", help="rows set aside by quality rules: list, show, replay")
    p.add_argument(
        "action",
        choices=["list", "show", "replay"],
        help="list what waits; show one row; replay: load the rows that pass the rules now",
    )
    p.add_argument("id", nargs="?", type=int, help="with show: the quarantined row's id")
    p.add_argument("--pipeline", required=True, help="the pipeline whose quarantine to use")
    p.add_argument("--pipelines", help=PIPELINES_HELP)
    p.add_argument("--all", action="store_true", help="with list: replayed rows too")
    p.add_argument("--limit", type=int, default=50, help="with list: how many rows to show (default 50)")
    p.set_defaults(func=cmd_quarantine)
    p = sub.add_parser("profile", help="column statistics of a source, file or table; draft a suite")
    p.add_argument("target", help="pipeline:source, a data file, or a warehouse table")
    p.add_argument("--suite", help="write a draft quality suite (GX JSON) to this path")
    p.set_defaults(func=cmd_profile)
    p = sub.add_parser("alerts", help="alerts: list, history, ack, resolve, silence, tick")
    p.add_argument(
        "action",
        choices=["list", "history", "ack", "resolve", "silence", "tick"],
        help="list open alerts; history with MTTA/MTTR; ack or resolve one; silence some; tick: "
        "send escalations and released holds",
    )
    p.add_argument(
        "id", nargs="?", type=int, help="with ack/resolve: the alert's id (see: headwater alerts list)"
    )
    p.add_argument("--pipeline", help="with list/history: only this pipeline's alerts")
    p.add_argument("--by", help="who acts (default: the login name)")
    p.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="KEY=PATTERN",
        help="with silence: pipeline=, rule= or severity= (globs such as flights_*); repeatable",
    )
    p.add_argument("--hours", type=float, default=4.0, help="with silence: how long (default 4)")
    p.add_argument("--reason", help="with silence: why, for the audit log and the console")
    p.set_defaults(func=cmd_alerts)
    p = sub.add_parser("transforms", help="list the transform ops")
    p.add_argument("--markdown", action="store_true", help="print the full reference (docs/transforms.md)")
    p.set_defaults(func=cmd_transforms)
    p = sub.add_parser("users", help="console users: add, list, set-role, passwd, disable, enable")
    p.add_argument(
        "action",
        choices=["add", "list", "set-role", "passwd", "disable", "enable"],
        help="what to do with the user",
    )
    p.add_argument("username", nargs="?", help="the user (all but list)")
    p.add_argument(
        "--role", choices=["data_analyst", "data_engineer", "system_admin"], help="with add and set-role"
    )
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_users)
    p = sub.add_parser("console", help="serve the Streamlit operations console")
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.set_defaults(func=cmd_console)
    p = sub.add_parser("demo", help="run the example pipelines on the embedded SQLite defaults")
    p.set_defaults(func=cmd_demo)
    from headwater import cli_backfill, cli_deploy, cli_services

    cli_backfill.add_parsers(sub, PIPELINES_HELP)
    cli_deploy.add_parsers(sub, PIPELINES_HELP)
    cli_services.add_parsers(sub, PIPELINES_HELP)
    return parser


def _supervised_command(argv: Sequence[str], settings: Settings, what: str) -> int:
    """Run this very command as a watched worker (see headwater.supervise): its output here, its
    temporary Prefect API and anything it starts ended with it, whatever happens to it."""
    from datetime import datetime

    from headwater.cli_run import supervised

    settings.ensure_home()
    (settings.home / "logs").mkdir(exist_ok=True)
    log = settings.home / "logs" / f"{what}-{datetime.now():%Y%m%dT%H%M%S}.log"
    outcome = supervised([sys.executable, "-m", "headwater.cli", *argv], log, verbose=True)
    if outcome.returncode < 0:
        print(f"error: the {what} process {outcome.describe()} (log: {log})", file=sys.stderr)
        return 1
    return outcome.returncode


def main(argv: Sequence[str] | None = None) -> int:
    from headwater.supervise import is_worker

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    # a temporary Prefect server started for this process sends no usage telemetry
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    settings = Settings.from_env()
    args.verbose = bool(getattr(args, "verbose", False) or args.verbose_all)
    verbose = args.verbose
    supervise = args.command == "demo" or (args.command == "quarantine" and args.action == "replay")
    if supervise and not is_worker():
        return _supervised_command(argv, settings, args.command)
    try:
        if getattr(args, "takes_table", False):
            return int(args.func(args, settings, table))
        return int(args.func(args, settings))
    except SpecError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        print(exc, file=sys.stderr)
        return 2
    except HeadwaterError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
