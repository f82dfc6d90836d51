"""`headwater sla`: each pipeline's service levels (its spec's `sla:`), attainment per objective over
the last days and the days it missed; `--check` runs the SLA alert sweep once (what `headwater up`
does each minute), for setups without `up`."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from headwater.cli.common import PIPELINES_HELP, table
from headwater.errors import PermanentError
from headwater.settings import Settings


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:g}%"


def cmd_sla(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.alerting.sla import check_slas, sla_specs
    from headwater.sla import sla_report
    from headwater.store import Store

    folder = Path(args.pipelines).resolve() if args.pipelines else settings.pipelines_dir
    specs, problems = sla_specs(folder)
    for problem in problems:
        print(f"skipped: {problem}")
    if args.pipeline:
        specs = [s for s in specs if s.name == args.pipeline]
        if not specs:
            raise PermanentError(
                f"no pipeline {args.pipeline!r} with an sla: in {folder}",
                hint='add e.g. `sla: {success_rate: 99, deadline: "07:30", timezone: Europe/London}` '
                "to its spec (names: headwater validate)",
            )
    if args.days is not None and args.days < 1:
        raise PermanentError("--days must be at least 1", hint="e.g. --days 7")
    store = Store(settings.database_url).migrate()
    now = datetime.now(UTC)
    try:
        if args.check:
            deliveries = check_slas(settings, store.engine, specs, now)
            if settings.alerts_dir is None:
                print("HEADWATER_ALERTS is not set: the SLA check sends no alerts (attainment below)")
            else:
                sent = [d for d in deliveries if d.status == "sent"]
                print(f"SLA check: {len(sent)} message(s) sent, {len(deliveries) - len(sent)} held or other")
        report = sla_report(store.engine, specs, now, args.days)
    finally:
        store.dispose()
    if args.json:
        print(json.dumps(report))
        return 0
    _print(report)
    return 0


def _print(report: dict[str, Any]) -> None:
    if not report["pipelines"]:
        print("no pipeline declares an sla: (see docs/sla.md)")
        return
    for p in report["pipelines"]:
        print(
            f"{p['pipeline']}: {_pct(p['attainment'])} of {p['days_measured']} day(s) met every objective "
            f"(last {p['days']} days, {p['timezone']})"
        )
        rows = [
            (
                o["objective"],
                o["target"],
                _pct(o["attainment"]),
                f"{o['days_met']}/{o['days_measured']}",
                ", ".join(o["missed_days"]) or "-",
            )
            for o in p["objectives"]
        ]
        print(table(rows, ["objective", "target", "attainment", "days met", "missed days"]))
        now = {k: v for k, v in p["now"].items() if k not in ("expected_duration_seconds", "deadline_at")}
        for kind, words in now.items():
            print(f"  now: {kind.replace('_', ' ')}: {words}")
        print()


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("sla", help="service levels: attainment per objective and the days missed")
    p.add_argument("pipeline", nargs="?", help="only this pipeline (default: every one with an sla:)")
    p.add_argument("--days", type=int, help="how many days back, today included (default: each SLA's window)")
    p.add_argument("--json", action="store_true", help="the report as JSON (as the API serves it)")
    p.add_argument(
        "--check",
        action="store_true",
        help="first run the SLA alert check once (raise or resolve alerts; `headwater up` does it "
        "every minute)",
    )
    p.add_argument("--pipelines", help=PIPELINES_HELP)
    p.set_defaults(func=cmd_sla)
