"""`headwater backfill NAME --from A --to B --every 1d|1w|1mo`: the range cut into partitions, one run
per partition with the window as the typed parameters `window_start` (inclusive) and `window_end`
(exclusive) that the spec uses as `${params.window_start}` / `${params.window_end}`. Runs are recorded
with execution type `backfill`; a partition whose run completed is not run again, so re-running the
same backfill runs only what failed or never ran. How partitions run (a Prefect server's workers, or
one after another here) is the caller's: this module plans, tracks and reports."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TextIO

from headwater.errors import PermanentError
from headwater.spec.loader import LoadedSpec
from headwater.store.store import Store

WINDOW = ("window_start", "window_end")
OK = ("completed", "completed_with_warnings")
_EVERY = re.compile(r"^\s*(\d+)\s*(d|w|mo)\s*$")


@dataclass(frozen=True, order=True)
class Partition:
    start: date
    end: date
    """exclusive"""

    def params(self) -> dict[str, str]:
        return {"window_start": self.start.isoformat(), "window_end": self.end.isoformat()}

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{(self.end - timedelta(days=1)).isoformat()}"


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def partitions(start: date, to: date, every: str) -> list[Partition]:
    """[start, to] (both days included) cut every `every` (Nd, Nw, Nmo); the last one ends after `to`."""
    match = _EVERY.match(every)
    if not match or int(match.group(1)) == 0:
        raise PermanentError(f"--every {every!r} is not a period", hint="give e.g. 1d, 7d, 1w or 1mo")
    if to < start:
        raise PermanentError(f"--to {to} is before --from {start}", hint="give --from <= --to")
    n, unit = int(match.group(1)), match.group(2)
    stop = to + timedelta(days=1)
    out: list[Partition] = []
    i = 0
    current = start
    while current < stop:
        i += 1
        if unit == "mo":
            nxt = _add_months(start, n * i)
        else:
            nxt = start + timedelta(days=n * i * (7 if unit == "w" else 1))
        out.append(Partition(current, min(nxt, stop)))
        current = nxt
        if len(out) > 10_000:
            raise PermanentError(
                "more than 10,000 partitions", hint="give a longer --every or a shorter range"
            )
    return out


def check_backfillable(loaded: LoadedSpec) -> None:
    """The spec must take the window as parameters, or every partition would load the same data."""
    missing = [p for p in WINDOW if p not in loaded.spec.params]
    if missing:
        raise PermanentError(
            f"{loaded.spec.name} cannot be backfilled: its spec declares no parameter {', '.join(missing)}",
            hint="declare params: {window_start: {type: date, required: true}, window_end: {type: date, "
            "required: true}} and use ${params.window_start} / ${params.window_end} in a filter or query",
        )
    wrong = [p for p in WINDOW if loaded.spec.params[p].type not in ("date", "string")]
    if wrong:
        raise PermanentError(
            f"{loaded.spec.name}: parameter(s) {', '.join(wrong)} must be of type date (or string)",
            hint="backfill passes dates as YYYY-MM-DD",
        )


def completed(store: Store, pipeline: str, parts: Iterable[Partition]) -> set[Partition]:
    """The partitions a backfill run of `pipeline` already completed (with or without warnings)."""
    wanted = {(p.start.isoformat(), p.end.isoformat()): p for p in parts}
    done: set[Partition] = set()
    for run in store.runs(pipeline, limit=100_000):
        if run["execution_type"] != "backfill" or run["status"] not in OK:
            continue
        params = run.get("parameters") or {}
        key = (str(params.get("window_start")), str(params.get("window_end")))
        if key in wanted:
            done.add(wanted[key])
    return done


@dataclass
class Progress:
    """A progress bar on a terminal; a line per finished partition elsewhere (logs, CI)."""

    total: int
    skipped: int
    out: TextIO = sys.stderr
    done: int = 0
    failed: int = 0

    def _bar(self) -> str:
        finished = self.skipped + self.done + self.failed
        width = 30
        filled = int(width * finished / self.total) if self.total else width
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{self.total} partitions"
            f" ({self.done} ran, {self.skipped} already done, {self.failed} failed)"
        )

    def start(self) -> None:
        if self.out.isatty():
            self.out.write(self._bar())
            self.out.flush()

    def finished(self, part: Partition, status: str, run_id: str | None) -> None:
        if status in OK:
            self.done += 1
        else:
            self.failed += 1
        if self.out.isatty():
            self.out.write("\r" + self._bar())
        else:
            ref = f" (run {run_id[:8]})" if run_id else ""
            self.out.write(f"{part}: {status}{ref}  {self._bar()}\n")
        self.out.flush()

    def close(self) -> None:
        if self.out.isatty():
            self.out.write("\n")
            self.out.flush()


def summary(results: dict[Partition, tuple[str, str | None]]) -> list[tuple[Any, ...]]:
    return [(str(p), status, (run_id or "")[:8]) for p, (status, run_id) in sorted(results.items())]
