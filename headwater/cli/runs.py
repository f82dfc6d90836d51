"""`headwater runs`: the run history, or one run with its steps, quality checks and score."""

from __future__ import annotations

import argparse
from typing import Any

from headwater.breakers import age_text
from headwater.cli.common import mb, params_text, secs, table
from headwater.settings import Settings


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
        print(f"{'parameters':18} {params_text(run['parameters'])}")
        for used in run.get("stale_data") or []:
            print(
                f"{'stale data':18} step {used['step']}: last good extract of {used['extracted_at']} "
                f"({used['rows']} rows, {age_text(used['age_seconds'])} old) loaded instead of source "
                f"{used['source']}: circuit breaker {used['breaker']} open until {used['open_until']}"
            )
        step_rows = [
            (
                s["step_name"],
                s["step_type"],
                s["status"],
                s["attempts"],
                s["records_in"],
                s["records_out"],
                secs(s["duration_seconds"]),
                mb(s["peak_memory_mb"]),
                s["error_message"] or "",
            )
            for s in store.steps(args.run)
        ]
        print()
        print(
            table(step_rows, ["step", "type", "status", "attempts", "in", "out", "time", "peak MB", "error"])
        )
        from headwater.views.runs import request_retries

        for s in store.steps(args.run):
            note = request_retries(s["metrics"])
            if note:
                print(f"  {s['step_name']}: {note}")
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
            secs(r["duration_seconds"]),
            r["records_processed"],
            r["records_loaded"],
            r["records_inserted"],
            r["records_updated"],
            r["records_quarantined"] or "",
            "" if r["quality_score"] is None else f"{r['quality_score']:.1f}",
            r["retry_count"],
            f"{r['failed_step']}: {r['error_type']}" if r["failed_step"] else (r["error_type"] or ""),
            "" if r.get("data_age_seconds") is None else f"STALE {age_text(r['data_age_seconds'])}",
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
                "data age",
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


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("runs", help="run history, or one run with its steps, quality checks and score")
    p.add_argument("--pipeline", help="only this pipeline's runs")
    p.add_argument("--run", metavar="RUN_ID", help="show one run: its id, or the 8-character short id")
    p.add_argument("--limit", type=int, default=20, help="how many runs to list (default 20)")
    p.set_defaults(func=cmd_runs)
