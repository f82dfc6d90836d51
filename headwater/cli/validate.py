"""`headwater validate`: check pipeline specs (and, with no paths given, the alert configuration)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from headwater.errors import SpecError
from headwater.settings import Settings


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


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("validate", help="check pipeline specs; each problem names file, line, field and fix")
    p.add_argument(
        "paths", nargs="*", help="spec files or folders (default: $HEADWATER_PIPELINES or ./pipelines)"
    )
    p.set_defaults(func=cmd_validate)
