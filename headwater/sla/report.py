"""The SLA report (JSON-ready: `headwater sla --json`, the console, the HTTP API)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa

from headwater.sla.attainment import attainment, objectives
from headwater.sla.check import findings
from headwater.sla.history import first_runs, read_history, resolved
from headwater.spec.models import PipelineSpec
from headwater.views.frames import rate


def sla_report(
    engine: sa.Engine, specs: Iterable[PipelineSpec], now: datetime, days: int | None = None
) -> dict[str, Any]:
    """JSON-ready attainment of every spec with an `sla:` over the last `days` days (default: each
    SLA's window): per pipeline its objectives (target, days measured and met, attainment %, missed
    days), the days themselves, and what a check finds now."""
    slas = {s.name: sla for s in specs if (sla := resolved(s)) is not None}
    span = max([(days or s.window_days) + s.window_days for s in slas.values()], default=1)
    history = read_history(engine, sorted(slas), now - timedelta(days=span + 1))
    firsts = first_runs(engine, sorted(slas))
    out = []
    for name, sla in sorted(slas.items()):
        runs = history.filter(pl.col("pipeline_name") == name)
        n = days or sla.window_days
        table = attainment(sla, runs, now, n, firsts.get(name))
        objs = objectives(sla, table)
        met = table["met"]
        measured = int(met.is_not_null().sum())
        found = findings(sla, runs, now, firsts.get(name))
        out.append(
            {
                "pipeline": name,
                "timezone": sla.timezone,
                "days": n,
                "attainment": rate(int(met.fill_null(False).sum()), measured),
                "days_measured": measured,
                "days_met": int(met.fill_null(False).sum()),
                "objectives": [
                    {
                        "objective": o.objective,
                        "target": o.target,
                        "days_measured": o.days_measured,
                        "days_met": o.days_met,
                        "attainment": o.attainment,
                        "missed_days": [d.isoformat() for d in o.missed_days],
                    }
                    for o in objs
                ],
                "per_day": [_jsonable(r) for r in table.iter_rows(named=True)],
                "now": {
                    **found.as_facts(),
                    "expected_duration_seconds": found.expected_seconds,
                    "deadline_at": found.deadline_at.isoformat() if found.deadline_at else None,
                },
            }
        )
    return {"generated_at": now.isoformat(), "pipelines": out}


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, date | datetime) else (round(v, 3) if isinstance(v, float) else v)
        for k, v in row.items()
    }


def attainment_frame(report: dict[str, Any]) -> pl.DataFrame:
    """One row per pipeline and objective of sla_report's answer (for tables)."""
    rows = [
        {
            "pipeline": p["pipeline"],
            "objective": o["objective"],
            "target": o["target"],
            "attainment": o["attainment"],
            "days_met": o["days_met"],
            "days_measured": o["days_measured"],
            "missed_days": ", ".join(o["missed_days"]),
        }
        for p in report["pipelines"]
        for o in p["objectives"]
    ]
    schema = {
        "pipeline": pl.String,
        "objective": pl.String,
        "target": pl.String,
        "attainment": pl.Float64,
        "days_met": pl.Int64,
        "days_measured": pl.Int64,
        "missed_days": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)
