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
            loaded = load_pipeline(path, secrets_may_be_unset=True, params_may_be_unset=True)
        except SpecError as exc:
            problems += len(exc.problems)
            for problem in exc.problems:
                print(problem)
            continue
        print(f"ok  {path}  ({loaded.spec.name}: {len(loaded.spec.steps)} steps)")
        for note in loaded.notes:
            print(f"    note: {note}")
    if problems:
        print(f"\n{problems} problem(s) found")
    return 1 if problems else 0


def _run_flow(
    pipeline: str,
    pipelines_dir: Path,
    execution_type: str | None,
    replay: bool = False,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from flows.pipeline import PipelineRunFailed, flow_for

    try:
        return flow_for(pipeline)(
            pipeline=pipeline,
            execution_type=execution_type,
            pipelines_dir=str(pipelines_dir),
            replay=replay,
            params=params,
        )
    except PipelineRunFailed as exc:
        return exc.summary


def _print_summary(result: dict[str, Any]) -> None:
    print(f"{result['pipeline']}: {result['status']}  (run {result['run_id']})")
    print(
        f"  rows read {result['records_processed']}, inserted {result['records_inserted']}, "
        f"updated {result['records_updated']}, retries {result['retry_count']}"
    )
    if result.get("failed_step"):
        print(f"  failed at step {result['failed_step']}: {result['error_type']}: {result['error_message']}")
    for warning in result.get("warnings") or []:
        print(f"  warning: {warning}")


def param_arg(text: str) -> tuple[str, str]:
    """`--param key=value`: the value stays text; the spec's declared type decides what it means."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value (e.g. --param feed=data/prices.csv)")
    return key.strip(), value


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    result = _run_flow(
        args.pipeline,
        Path(args.pipelines or settings.pipelines_dir),
        args.execution_type,
        params=dict(args.param) or None,
    )
    _print_summary(result)
    return 1 if result["status"] == "failed" else 0


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.store import Store

    store = Store(settings.database_url).migrate()
    if args.run:
        run = store.run(args.run)
        if not run:
            print(f"no run {args.run}")
            return 1
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
            (r["failed_step"] or "") and f"{r['failed_step']}: {r['error_type']}",
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
        result = _run_flow(name, pipelines, "manual")
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
    api = os.environ.get("PREFECT_API_URL")
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

    from headwater.load.quarantine import count_quarantined, read_quarantined

    engines = _warehouse_engines(args.pipeline, settings, args.pipelines)
    if args.action == "replay":
        before = {t: count_quarantined(e, args.pipeline, t) for t, e in engines.items()}
        result = _run_flow(args.pipeline, Path(args.pipelines or settings.pipelines_dir), None, replay=True)
        after = {t: count_quarantined(e, args.pipeline, t) for t, e in engines.items()}
        _print_summary(result)
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
    import getpass
    from datetime import UTC, datetime, timedelta

    from headwater.alerting import AlertEngine, load_channels, load_rules
    from headwater.store import Store

    if settings.alerts_dir is None:
        print("HEADWATER_ALERTS is not set: point it at the folder with channels.yaml and rules.yaml")
        return 1
    channels = load_channels(settings.alerts_dir / "channels.yaml")
    engine = AlertEngine(
        Store(settings.database_url).migrate().engine,
        channels,
        load_rules(settings.alerts_dir / "rules.yaml", channels),
    )
    now, who = datetime.now(UTC), args.by or getpass.getuser()
    if args.action == "ack":
        engine.ack(args.id, who, now)
        print(f"alert {args.id} acknowledged by {who}: escalation stops")
    elif args.action == "resolve":
        sent = engine.resolve(args.id, who, now)
        print(f"alert {args.id} resolved by {who}; {len(sent)} message(s)")
    elif args.action == "silence":
        matchers = dict(m.split("=", 1) for m in args.match)
        silence = engine.silence(matchers, now + timedelta(hours=args.hours), who, now, args.reason or "")
        print(f"silence {silence.id} on {matchers} until {silence.expires_at:%Y-%m-%d %H:%M} UTC")
    elif args.action == "tick":
        sent = engine.tick(now)
        print(f"{len(sent)} message(s) from escalations and released holds")
    else:
        rows = [
            (
                r["id"],
                r["pipeline_name"],
                r["rule_name"],
                r["severity"],
                r["status"],
                r["occurrences"],
                r["level"],
                f"{r['opened_at']:%Y-%m-%d %H:%M}",
            )
            for r in engine.history(args.pipeline)
            if args.action == "history" or r["status"] in ("open", "acknowledged")
        ]
        print(table(rows, ["id", "pipeline", "rule", "severity", "status", "seen", "level", "opened (UTC)"]))
        if args.action == "history":
            m = engine.mtta_mttr(args.pipeline)
            mtta = "-" if m.mtta_seconds is None else f"{m.mtta_seconds / 60:.1f} min"
            mttr = "-" if m.mttr_seconds is None else f"{m.mttr_seconds / 60:.1f} min"
            print(f"\nMTTA {mtta} ({m.acknowledged} acknowledged), MTTR {mttr} ({m.resolved} resolved)")
    return 0


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
    print(f"Headwater console on http://{args.address}:{args.port}  (store {settings.database_url.split('://')[0]})")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="headwater", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check pipeline specs; errors name file, line, field and fix")
    p.add_argument(
        "paths", nargs="*", help="spec files or folders (default: HEADWATER_PIPELINES or ./pipelines)"
    )
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("run", help="run one pipeline now, as a Prefect flow")
    p.add_argument("pipeline")
    p.add_argument("--pipelines", help="folder of specs (default: HEADWATER_PIPELINES or ./pipelines)")
    p.add_argument("--execution-type", choices=["manual", "scheduled", "triggered", "retry"])
    p.add_argument(
        "--param",
        action="append",
        type=param_arg,
        default=[],
        metavar="KEY=VALUE",
        help="a value for a parameter the spec declares (repeatable); the rest take their defaults",
    )
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("runs", help="run history")
    p.add_argument("--pipeline")
    p.add_argument("--run", help="show one run with its steps")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("quarantine", help="rows set aside by quality rules: list, show, replay")
    p.add_argument("action", choices=["list", "show", "replay"])
    p.add_argument("id", nargs="?", type=int, help="with show: the quarantined row's id")
    p.add_argument("--pipeline", required=True)
    p.add_argument("--pipelines", help="folder of specs (default: HEADWATER_PIPELINES or ./pipelines)")
    p.add_argument("--all", action="store_true", help="with list: replayed rows too")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_quarantine)
    p = sub.add_parser("profile", help="column statistics of a source, file or table; draft a suite")
    p.add_argument("target", help="pipeline:source, a data file, or a warehouse table")
    p.add_argument("--suite", help="write a draft quality suite (GX JSON) to this path")
    p.set_defaults(func=cmd_profile)
    p = sub.add_parser("alerts", help="alert instances: list, history, ack, resolve, silence, tick")
    p.add_argument("action", choices=["list", "history", "ack", "resolve", "silence", "tick"])
    p.add_argument("id", nargs="?", type=int, help="with ack/resolve: the alert's id")
    p.add_argument("--pipeline")
    p.add_argument("--by", help="who acts (default: the login name)")
    p.add_argument("--match", action="append", default=[], help="with silence: pipeline=, rule= or severity=")
    p.add_argument("--hours", type=float, default=4.0, help="with silence: how long")
    p.add_argument("--reason")
    p.set_defaults(func=cmd_alerts)
    p = sub.add_parser("transforms", help="list the transform ops")
    p.add_argument("--markdown", action="store_true", help="print the full reference (docs/transforms.md)")
    p.set_defaults(func=cmd_transforms)
    p = sub.add_parser("users", help="console users: add, list, set-role, passwd, disable, enable")
    p.add_argument("action", choices=["add", "list", "set-role", "passwd", "disable", "enable"])
    p.add_argument("username", nargs="?")
    p.add_argument("--role", choices=["data_analyst", "data_engineer", "system_admin"], help="add, set-role")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_users)
    p = sub.add_parser("console", help="serve the Streamlit operations console")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1")
    p.set_defaults(func=cmd_console)
    p = sub.add_parser("demo", help="run the example pipelines on the embedded SQLite defaults")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # a temporary Prefect server started for this process sends no usage telemetry
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    settings = Settings.from_env()
    try:
        return int(args.func(args, settings))
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    except HeadwaterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
