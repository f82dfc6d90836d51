"""`headwater backfill` (see headwater.backfill): through the pipeline's deployment when a Prefect
server holds one (its workers run the partitions in parallel), else one partition after another in a
watched worker process here."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from headwater.backfill import Partition, Progress, check_backfillable, completed, partitions, summary
from headwater.cli.common import PIPELINES_HELP, supervised_command, table
from headwater.errors import PermanentError
from headwater.settings import Settings


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: give YYYY-MM-DD") from None


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.services import running_api_url
    from headwater.spec.loader import find_pipeline
    from headwater.store import Store
    from headwater.supervise import is_worker

    if args.parallel < 1:
        raise PermanentError("--parallel must be at least 1", hint="e.g. --parallel 4")
    folder = Path(args.pipelines).resolve() if args.pipelines else settings.pipelines_dir
    settings.ensure_home()
    settings.use_home_secrets()
    loaded = find_pipeline(folder, args.pipeline, params_may_be_unset=True)
    check_backfillable(loaded)
    parts = partitions(args.start, args.to, args.every)
    store = Store(settings.database_url).migrate()
    try:
        done = completed(store, args.pipeline, parts)
    finally:
        store.dispose()
    pending = [p for p in parts if p not in done]
    if not pending:
        print(f"{args.pipeline}: all {len(parts)} partitions already completed; nothing to run")
        return 0
    key = hashlib.sha256(f"{args.pipeline}|{args.start}|{args.to}|{args.every}".encode()).hexdigest()[:8]
    url = os.environ.get("PREFECT_API_URL") or running_api_url(settings)
    deployment = None
    if url and not is_worker():
        os.environ["PREFECT_API_URL"] = url
        from headwater.orchestration import orchestration

        deployment = orchestration().deployment_id(args.pipeline)
    if deployment is None and not is_worker():
        return supervised_command(args.argv, settings, "backfill")
    print(
        f"{args.pipeline}: backfill {key}, {len(parts)} partitions every {args.every}, "
        f"{len(done)} already completed, {len(pending)} to run"
        + (
            f" on deployment {args.pipeline} ({url}), {args.parallel} at a time"
            if deployment
            else " here, in turn"
        ),
        flush=True,
    )
    progress = Progress(len(parts), len(done))
    progress.start()
    if deployment is not None:
        results = _on_server(args, settings, deployment, pending, key, progress)
    else:
        results = _here(args, folder, pending, progress)
    progress.close()
    print(table(summary(results), ["partition", "status", "run"]))
    failed = [
        p for p, (status, _) in results.items() if status not in ("completed", "completed_with_warnings")
    ]
    if failed:
        print(f"{len(failed)} partition(s) did not complete: run the same backfill again to retry only those")
        return 1
    return 0


def _here(
    args: argparse.Namespace, folder: Path, pending: list[Partition], progress: Progress
) -> dict[Partition, tuple[str, str | None]]:
    from headwater.orchestration import orchestration

    results: dict[Partition, tuple[str, str | None]] = {}
    for part in pending:
        run_id = str(uuid.uuid4())
        try:
            result = orchestration().run_pipeline(
                args.pipeline, folder, "backfill", params=part.params(), run_id=run_id
            )
            status = str(result["status"])
        except Exception as exc:  # a refused partition (its spec does not load for this window)
            print(f"{part}: {type(exc).__name__}: {exc}", file=sys.stderr)
            status = "failed"
        results[part] = (status, run_id)
        progress.finished(part, status, run_id)
    return results


def _on_server(
    args: argparse.Namespace,
    settings: Settings,
    deployment: Any,
    pending: list[Partition],
    key: str,
    progress: Progress,
) -> dict[Partition, tuple[str, str | None]]:
    from headwater.orchestration import orchestration
    from headwater.store import Store

    orchestrator = orchestration()
    store = Store(settings.database_url)
    queue = list(pending)
    in_flight: dict[str, tuple[Partition, str]] = {}
    results: dict[Partition, tuple[str, str | None]] = {}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < args.parallel:
                part = queue.pop(0)
                run_id = str(uuid.uuid4())
                submitted = orchestrator.submit(deployment, args.pipeline, part.params(), run_id, key)
                in_flight[submitted] = (part, run_id)
            for flow_run_id, state in orchestrator.finished(list(in_flight)).items():
                part, run_id = in_flight.pop(flow_run_id)
                record = store.run(run_id)
                status = record["status"] if record else state.lower()
                results[part] = (status, run_id)
                progress.finished(part, status, run_id)
            time.sleep(1.0)
    finally:
        store.dispose()
    return results


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("backfill", help="run a pipeline once per date partition of a range (resumable)")
    p.add_argument("pipeline", help="the pipeline's name; its spec takes params window_start and window_end")
    p.add_argument("--from", dest="start", type=_day, required=True, help="first day (YYYY-MM-DD)")
    p.add_argument("--to", type=_day, required=True, help="last day, included (YYYY-MM-DD)")
    p.add_argument("--every", default="1d", help="partition length: Nd, Nw or Nmo (default 1d)")
    p.add_argument(
        "--parallel", type=int, default=4, help="with a server: partitions in flight at once (default 4)"
    )
    p.add_argument("--pipelines", help=PIPELINES_HELP)
    p.set_defaults(func=cmd_backfill)
