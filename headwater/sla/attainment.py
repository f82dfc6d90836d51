"""Attainment per day: each declared objective met, missed or not measured on each local day, and
per objective the days measured and met (the rules are in headwater.sla's docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from headwater.sla.history import FINISHED, OK, deadline_time, span, tz_of
from headwater.spec.models import SLA_DAYS, Sla
from headwater.views.frames import UTC_TS, rate


def _calendar(sla: Sla, now: datetime, days: int) -> pl.DataFrame:
    """The last `days` local days ending today: each day's start, end, stop (its end, today: now)
    and deadline (UTC), from the time zone's own rules (not a fixed offset)."""
    zone = tz_of(sla)
    today = now.astimezone(zone).date()
    clock = deadline_time(sla)
    rows = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        start = datetime.combine(day, time(0), zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
        due = None
        if clock is not None and SLA_DAYS[day.weekday()] in sla.days:
            due = datetime.combine(day, clock, zone).astimezone(UTC)
        rows.append((day, start, end, min(end, now), due))
    return pl.DataFrame(
        rows,
        schema={"day": pl.Date, "start": UTC_TS, "end": UTC_TS, "stop": UTC_TS, "due": UTC_TS},
        orient="row",
    )


def _seconds(expr: pl.Expr) -> pl.Expr:
    return expr.dt.total_microseconds() / 1_000_000


def attainment(
    sla: Sla, runs: pl.DataFrame, now: datetime, days: int, first_run: datetime | None
) -> pl.DataFrame:
    """One row per local day (oldest first) with, per declared objective, its figure and whether it
    was met (null: nothing to measure), and `met`: every measured objective met that day. A deadline
    before the pipeline's `first_run` (None: it never ran) is not measured."""
    cal = _calendar(sla, now, days).with_columns(
        pl.when(pl.col("due") > (first_run or now)).then(pl.col("due")).alias("due")
    )
    out = cal.select("day")
    finished = runs.filter(pl.col("status").is_in(FINISHED))
    successes = (
        runs.filter(pl.col("status").is_in(OK), pl.col("ended_at").is_not_null(), pl.col("ended_at") <= now)
        .sort("ended_at")
        .select("ended_at", pl.col("ended_at").shift(1).alias("prev_end"))
    )
    checks: list[str] = []
    if sla.success_rate is not None:
        window = timedelta(seconds=sla.window)
        rates = (
            cal.join(finished, how="cross")
            .filter(pl.col("started_at") > pl.col("stop") - window, pl.col("started_at") <= pl.col("stop"))
            .group_by("day")
            .agg(
                (pl.col("status").is_in(OK).sum() * 100.0 / pl.len()).alias("success_rate"),
                pl.len().alias("success_rate_runs"),
            )
        )
        out = out.join(rates, on="day", how="left").with_columns(
            pl.col("success_rate_runs").fill_null(0),
            (pl.col("success_rate") >= sla.success_rate).alias("success_rate_met"),
        )
        checks.append("success_rate_met")
    if sla.max_duration is not None:
        took = runs.filter(pl.col("status") != "skipped").with_columns(
            pl.when(pl.col("status") == "running")
            .then(_seconds(pl.lit(now, UTC_TS) - pl.col("started_at")))
            .otherwise(pl.col("duration_seconds"))
            .alias("took")
        )
        longest = (
            cal.join(took, how="cross")
            .filter(pl.col("started_at") >= pl.col("start"), pl.col("started_at") < pl.col("stop"))
            .group_by("day")
            .agg(pl.col("took").max().alias("max_duration_seconds"))
        )
        out = out.join(longest, on="day", how="left").with_columns(
            (pl.col("max_duration_seconds") <= sla.max_duration).alias("max_duration_met")
        )
        checks.append("max_duration_met")
    if sla.freshness is not None:
        # the age peaks just before each successful end within the day, and at the day's stop
        inside = (
            cal.join(successes, how="cross")
            .filter(
                pl.col("ended_at") > pl.col("start"),
                pl.col("ended_at") <= pl.col("stop"),
                pl.col("prev_end").is_not_null(),
            )
            .group_by("day")
            .agg(_seconds(pl.col("ended_at") - pl.col("prev_end")).max().alias("peak"))
        )
        tail = (
            cal.sort("stop")
            .join_asof(
                successes.select(pl.col("ended_at").alias("last_end")),
                left_on="stop",
                right_on="last_end",
                strategy="backward",
            )
            .select("day", _seconds(pl.col("stop") - pl.col("last_end")).alias("tail"))
        )
        out = (
            out.join(tail, on="day", how="left")
            .join(inside, on="day", how="left")
            .with_columns(
                pl.when(pl.col("tail").is_not_null())
                .then(pl.max_horizontal("tail", "peak"))
                .alias("freshness_max_age_seconds")
            )
            .drop("tail", "peak")
            .with_columns((pl.col("freshness_max_age_seconds") <= sla.freshness).alias("freshness_met"))
        )
        checks.append("freshness_met")
    if sla.deadline is not None:
        firsts = (
            cal.join(successes.select("ended_at"), how="cross")
            .filter(pl.col("ended_at") >= pl.col("start"), pl.col("ended_at") < pl.col("end"))
            .group_by("day")
            .agg(pl.col("ended_at").min().alias("first_success_at"))
        )
        out = (
            out.join(cal.select("day", "due"), on="day", how="left")
            .join(firsts, on="day", how="left")
            .with_columns(
                pl.when(pl.col("due").is_null())
                .then(None)
                .when(pl.col("first_success_at") <= pl.col("due"))
                .then(True)
                .when(pl.col("due") > now)
                .then(None)
                .otherwise(False)
                .alias("deadline_met")
            )
            .rename({"due": "deadline_at"})
        )
        checks.append("deadline_met")
    return out.with_columns(
        pl.when(pl.any_horizontal(pl.col(c).is_not_null() for c in checks))
        .then(pl.all_horizontal(pl.col(c).fill_null(True) for c in checks))
        .alias("met")
    ).sort("day")


@dataclass(frozen=True)
class ObjectiveAttainment:
    objective: str
    target: str
    """In words: "≥ 99%", "≤ 20 min", "by 07:30 Europe/London (mon-fri)"."""
    days_measured: int
    days_met: int
    attainment: float | None
    """% of measured days on which it was met."""
    missed_days: list[date]


def objectives(sla: Sla, days: pl.DataFrame) -> list[ObjectiveAttainment]:
    """Per declared objective: days measured and met over `days` (attainment's frame)."""
    targets: dict[str, str | None] = {
        "success_rate": None,
        "max_duration": None if sla.max_duration is None else f"<= {span(sla.max_duration)}",
        "freshness": None if sla.freshness is None else f"<= {span(sla.freshness)}",
        "deadline": None if sla.deadline is None else f"by {sla.deadline} {sla.timezone}{_days(sla)}",
    }
    if sla.success_rate is not None:
        targets["success_rate"] = f">= {sla.success_rate:g}% over {sla.window_days} d"
    out = []
    for name, target in targets.items():
        if target is None:
            continue
        met = days[f"{name}_met"]
        measured = int(met.is_not_null().sum())
        hit = int(met.fill_null(False).sum())
        missed = days.filter(pl.col(f"{name}_met") == False)["day"].to_list()  # noqa: E712
        out.append(ObjectiveAttainment(name, target, measured, hit, rate(hit, measured), missed))
    return out


def _days(sla: Sla) -> str:
    return "" if len(sla.days) == 7 else f" ({', '.join(sla.days)})"
