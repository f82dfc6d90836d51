"""`headwater quarantine`: the rows quality rules set aside: list, show one, replay them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from headwater.cli.common import PIPELINES_HELP, table
from headwater.settings import Settings


def _warehouse_engines(pipeline: str, settings: Settings, pipelines_dir: str | None = None) -> dict[str, Any]:
    """Target table -> engine of every load step of the pipeline (URL warehouses; blocks need a flow)."""
    from headwater.connections import Connections
    from headwater.spec.loader import find_pipeline
    from headwater.spec.models import LoadStep

    loaded = find_pipeline(pipelines_dir or settings.pipelines_dir, pipeline)
    connections = Connections(settings.warehouse_url)
    return {
        s.destination.table: connections.engine(loaded.spec.warehouse_of(s))
        for s in loaded.spec.steps
        if isinstance(s, LoadStep)
    }


def cmd_quarantine(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from headwater.cli.run import print_run
    from headwater.load.quarantine import count_quarantined, read_quarantined
    from headwater.orchestration import orchestration
    from headwater.store import Store

    engines = _warehouse_engines(args.pipeline, settings, args.pipelines)
    if args.action == "replay":
        before = {t: count_quarantined(e, args.pipeline, t) for t, e in engines.items()}
        result = orchestration().run_pipeline(
            args.pipeline, Path(args.pipelines or settings.pipelines_dir), None, replay=True
        )
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


def add_parsers(sub: Any) -> None:
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
