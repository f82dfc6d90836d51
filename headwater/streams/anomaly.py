"""Per-key z-scores on event time, for a stream processor's `anomaly` step: each event's value is
compared with the same key's values over the `over` seconds before it (e.g. a patient's heart rate
against that patient's last 5 minutes), and flagged when |z| > `z`.

The baseline is kept as per-key buckets of `bucket` seconds (count, sum, sum of squares per column),
so the state stays small however many events arrive: an event in bucket b is compared with the
events of buckets [b - over, b) — the `over` seconds before its bucket began, the event's own bucket
excluded. Buckets older than the newest bucket seen minus `over` are dropped, so an event later than
that has a shorter baseline (and no z-score below `min_events`). Pure Polars: no Redis, no warehouse.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from headwater.durations import parse_duration

_B, _B2 = "__hw_bucket", "__hw_base_bucket"
_VERSION = 1
FLAG = "anomaly"
"""The boolean column an anomaly step adds: some column's |z| is over the threshold."""


def zscore_column(column: str) -> str:
    return f"{column}_zscore"


class AnomalySpec(BaseModel):
    """Which columns are scored, per which keys, over how much event time, and from what |z| on an
    event is an anomaly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: list[str] = Field(min_length=1, description="Numeric columns scored; adds <column>_zscore.")
    time_column: str = Field(description="The event-time column (a Datetime).")
    keys: list[str] = Field(default_factory=list, description="A baseline is kept per these columns.")
    over: float = Field(300.0, description="Seconds of the key's history an event is compared with ('5m').")
    bucket: float = Field(10.0, description="Granularity of the kept history; `over` is a multiple of it.")
    z: float = Field(2.5, gt=0, description="An event is an anomaly when |z| is over this in some column.")
    min_events: int = Field(10, ge=2, description="Fewer events in the baseline: no z-score (NULL).")

    @field_validator("over", "bucket", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _coherent(self) -> AnomalySpec:
        ratio = self.over / self.bucket
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(f"over ({self.over:g} s) must be a whole multiple of bucket ({self.bucket:g} s)")
        clash = {zscore_column(c) for c in self.columns} & set(self.keys)
        if clash or FLAG in self.keys:
            raise ValueError(f"keys may not be named like the columns the step adds: {sorted(clash)}")
        return self

    def output_columns(self) -> list[str]:
        return [zscore_column(c) for c in self.columns] + [FLAG]


def _stat(column: str, what: str) -> str:
    return f"__hw_{what}_{column}"


@dataclass(frozen=True)
class AnomalyState:
    """The kept buckets (keys, bucket start in µs since the epoch, n/sum/sum of squares per column)."""

    buckets: pl.DataFrame | None = None

    def to_json(self) -> str:
        frame = None
        if self.buckets is not None:
            buffer = io.BytesIO()
            self.buckets.write_ipc(buffer)
            frame = base64.b64encode(buffer.getvalue()).decode("ascii")
        return json.dumps({"version": _VERSION, "buckets": frame})

    @classmethod
    def from_json(cls, text: str) -> AnomalyState:
        doc = json.loads(text)
        frame = doc.get("buckets")
        return cls(None if frame is None else pl.read_ipc(io.BytesIO(base64.b64decode(frame))))


def score(spec: AnomalySpec, state: AnomalyState, frame: pl.DataFrame) -> tuple[pl.DataFrame, AnomalyState]:
    """`frame` with <column>_zscore for each column and `anomaly`; the state after it. An event with
    no event time, or a NULL value, gets a NULL z-score and adds nothing to the baseline."""
    missing = [c for c in [spec.time_column, *spec.keys, *spec.columns] if c not in frame.columns]
    if missing:
        raise ValueError(
            f"the anomaly step needs column(s) {', '.join(missing)}; "
            f"the events have {', '.join(frame.columns)}"
        )
    keys = list(spec.keys)
    bucket_us = round(spec.bucket * 1_000_000)
    over_us = round(spec.over * 1_000_000)
    t = pl.col(spec.time_column).dt.epoch("us")
    work = frame.with_columns(((t // bucket_us) * bucket_us).alias(_B))
    sums = []
    for c in spec.columns:
        x = pl.col(c).cast(pl.Float64)
        sums += [
            x.count().cast(pl.Int64).alias(_stat(c, "n")),
            x.sum().alias(_stat(c, "s")),
            (x * x).sum().alias(_stat(c, "ss")),
        ]
    stat_cols = [_stat(c, w) for c in spec.columns for w in ("n", "s", "ss")]
    timed = work.filter(pl.col(_B).is_not_null())
    batch = timed.group_by([*keys, _B]).agg(sums)
    parts = [batch] if state.buckets is None else [state.buckets, batch]
    merged = (
        pl.concat(parts, how="vertical_relaxed").group_by([*keys, _B]).agg(pl.col(s).sum() for s in stat_cols)
    )
    pairs = timed.select([*keys, _B]).unique()
    candidates = merged.rename({_B: _B2})
    joined = (
        pairs.join(candidates, on=keys, how="inner", nulls_equal=True)
        if keys
        else pairs.join(candidates, how="cross")
    )
    base = (
        joined.filter((pl.col(_B2) >= pl.col(_B) - over_us) & (pl.col(_B2) < pl.col(_B)))
        .group_by([*keys, _B])
        .agg(pl.col(s).sum() for s in stat_cols)
    )
    scored = work.join(base, on=[*keys, _B], how="left", nulls_equal=True, maintain_order="left")
    zs = []
    for c in spec.columns:
        n, s, ss = (pl.col(_stat(c, w)) for w in ("n", "s", "ss"))
        mean = s / n
        var = ss / n - mean * mean
        z = (pl.col(c).cast(pl.Float64) - mean) / var.sqrt()
        zs.append(
            pl.when((n >= spec.min_events) & (var > 1e-12) & z.is_finite())
            .then(z)
            .otherwise(None)
            .alias(zscore_column(c))
        )
    scored = scored.with_columns(zs)
    flag = pl.any_horizontal([pl.col(zscore_column(c)).abs() > spec.z for c in spec.columns]).fill_null(False)
    out = scored.with_columns(flag.alias(FLAG)).select([*frame.columns, *spec.output_columns()])
    newest = merged[_B].max()
    kept = merged if newest is None else merged.filter(pl.col(_B) >= newest - over_us)  # type: ignore[operator]
    return out, AnomalyState(kept.sort([*keys, _B]) if kept.height else None)
