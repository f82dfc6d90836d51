"""Event-time windows over micro-batches: tumbling, hopping and session, keyed, with allowed lateness;
and running totals (kind ``running``): per key, cumulative aggregates over every event so far.

A stream processor calls :func:`process` once per micro-batch and keeps the returned
:class:`WindowState` durably (``to_json``/``from_json``) between batches. Pure Polars: no Redis, no
Prefect. The semantics (watermark, lateness, closing, session merging) are in ``docs/windows.md``;
in short, the batch's row order is arrival order and every decision is taken per event against the
watermark *before* that event, so results do not depend on how events are split into batches.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from headwater.durations import parse_duration
from headwater.errors import PermanentError

AggFn = Literal["count", "sum", "mean", "min", "max", "first", "last", "std", "latest"]
AGG_FNS: tuple[str, ...] = ("count", "sum", "mean", "min", "max", "first", "last", "std", "latest")
RESERVED = ("window_start", "window_end", "event_count", "reason", "watermark")
US = 1_000_000
_STATE_VERSION = 1

# Internal columns of the partial aggregates (kept in the state between batches).
_T, _SEQ, _WPREV = "__hw_t", "__hw_seq", "__hw_wprev"
_START, _END, _COUNT = "window_start", "window_end", "event_count"
_FIRST_T, _FIRST_SEQ, _LAST_T, _LAST_SEQ = "__hw_first_t", "__hw_first_seq", "__hw_last_t", "__hw_last_seq"
_SID = "__hw_session"


class WindowSpec(BaseModel):
    """How events are grouped into event-time windows and what is computed for each window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["tumbling", "hopping", "session", "running"] = Field(
        description="tumbling: fixed, non-overlapping; hopping: fixed size every `hop`; session: per key, "
        "events less than `gap` apart; running: per key, every event so far (no time bounds, never closes)."
    )
    time_column: str = Field(description="The event-time column (a Polars Datetime).")
    keys: list[str] = Field(default_factory=list, description="Columns a window is kept per (may be empty).")
    aggregations: dict[str, list[AggFn]] = Field(
        default_factory=dict,
        description="Column -> functions among count, sum, mean, min, max, first, last, std, latest; output "
        "columns are named `<column>_<fn>`. A single function may be given as a string.",
    )
    size: float | None = Field(
        None, description="Window size in seconds (tumbling, hopping), or '30s', '5m'."
    )
    hop: float | None = Field(None, description="Hopping only: a window starts every `hop`; size % hop == 0.")
    gap: float | None = Field(None, description="Session only: events at least `gap` apart split sessions.")
    allowed_lateness: float = Field(
        0.0, description="Seconds a window stays open past its end (watermark >= end + lateness closes it)."
    )

    @field_validator("size", "hop", "gap", mode="before")
    @classmethod
    def _positive_duration(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)

    @field_validator("allowed_lateness", mode="before")
    @classmethod
    def _lateness(cls, v: Any) -> float:
        try:
            return parse_duration(v, allow_zero=True)
        except ValueError as exc:
            raise ValueError(f"allowed_lateness: {exc}") from None

    @field_validator("aggregations", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        if isinstance(v, dict):
            out = {col: [fns] if isinstance(fns, str) else fns for col, fns in v.items()}
            for col, fns in out.items():
                unknown = [f for f in fns if f not in AGG_FNS] if isinstance(fns, list) else []
                if unknown:
                    raise ValueError(
                        f"unknown aggregation {', '.join(map(repr, unknown))} for column {col!r}; "
                        f"choose among {', '.join(AGG_FNS)}"
                    )
            return out
        return v

    @model_validator(mode="after")
    def _coherent(self) -> WindowSpec:
        if self.kind == "running":
            self._running_coherent()
        for name, value in (("size", self.size), ("hop", self.hop), ("gap", self.gap)):
            if value is not None and round(value * US) != value * US:
                raise ValueError(
                    f"{name} {value}s is not a whole number of microseconds: give it in whole microseconds"
                )
        if self.kind in ("tumbling", "hopping") and self.size is None:
            raise ValueError(f"a {self.kind} window needs a size: give one, e.g. size: 30s")
        if self.kind == "hopping":
            if self.hop is None:
                raise ValueError("a hopping window needs a hop: give one, e.g. hop: 10s")
            size_us, hop_us = round(self.size * US), round(self.hop * US)  # type: ignore[operator]
            if hop_us > size_us or size_us % hop_us:
                raise ValueError(
                    f"hop {self.hop}s does not divide size {self.size}s: make the size a whole multiple "
                    "of the hop (e.g. size 60s, hop 15s)"
                )
        elif self.hop is not None:
            raise ValueError(f"hop applies to hopping windows only, not {self.kind}: remove it")
        if self.kind == "session":
            if self.gap is None:
                raise ValueError("a session window needs a gap: give one, e.g. gap: 5m")
            if self.size is not None:
                raise ValueError("a session window has no size: give gap only")
        elif self.gap is not None:
            raise ValueError(f"gap applies to session windows only, not {self.kind}: remove it")
        clash = sorted({self.time_column, *self.keys} & set(RESERVED))
        if clash:
            raise ValueError(f"column name(s) {clash} are reserved for window output; rename them first")
        if self.time_column in self.keys:
            raise ValueError(
                f"the time column {self.time_column!r} cannot also be a key: remove it from keys"
            )
        return self

    def _running_coherent(self) -> None:
        given = [name for name in ("size", "hop", "gap") if getattr(self, name) is not None]
        if given:
            raise ValueError(
                f"a running total has no time bounds: remove {', '.join(given)} (or choose a tumbling, "
                "hopping or session window)"
            )
        if self.allowed_lateness:
            raise ValueError(
                "no event is late for a running total (every event with an event time is counted): "
                "remove allowed_lateness"
            )
        with_std = sorted(col for col, fns in self.aggregations.items() if "std" in fns)
        if with_std:
            raise ValueError(
                f"std of {', '.join(with_std)}: a running total keeps only what merges exactly, and a "
                "standard deviation merged batch after batch over an unbounded stream does not; remove "
                "std, or compute it per tumbling window"
            )

    def us(self, name: Literal["size", "hop", "gap", "allowed_lateness"]) -> int:
        """A duration of the spec in integer microseconds (0 when unset)."""
        value = getattr(self, name)
        return 0 if value is None else round(value * US)

    def output_columns(self) -> list[str]:
        """Column names of a closed-window frame, in order."""
        aggs = [f"{col}_{fn}" for col, fns in self.aggregations.items() for fn in fns]
        return [*self.keys, _START, _END, _COUNT, *aggs]


class WindowInputError(PermanentError):
    """A batch cannot be windowed as specified (a missing or mistyped column); retrying cannot help."""

    def __init__(self, column: str, problem: str, available: list[str]) -> None:
        self.column = column
        self.problem = problem
        self.available = available
        super().__init__(
            f"window input column {column!r} {problem}; the batch has {available}",
            hint="fix the window spec or the ops before it",
        )


@dataclass(frozen=True)
class WindowState:
    """What survives between batches: open windows with their partial aggregates (running totals: every
    key's), the watermark (max event time seen, in epoch microseconds), the arrival counter and the time
    zone of the time column."""

    windows: pl.DataFrame | None = None
    watermark: int | None = None
    seen: int = 0
    time_zone: str | None = None

    def to_json(self) -> str:
        """A JSON document; the windows frame travels as base64 Arrow IPC, so dtypes and floats are exact."""
        frame = None
        if self.windows is not None:
            buffer = io.BytesIO()
            self.windows.write_ipc(buffer)
            frame = base64.b64encode(buffer.getvalue()).decode("ascii")
        doc = {
            "version": _STATE_VERSION,
            "watermark": self.watermark,
            "seen": self.seen,
            "time_zone": self.time_zone,
            "windows": frame,
        }
        return json.dumps(doc)

    @classmethod
    def from_json(cls, text: str) -> WindowState:
        doc = json.loads(text)
        if doc.get("version") != _STATE_VERSION:
            raise PermanentError(f"window state version {doc.get('version')!r} is not {_STATE_VERSION}")
        frame = doc["windows"]
        windows = None if frame is None else pl.read_ipc(io.BytesIO(base64.b64decode(frame)))
        return cls(windows, doc["watermark"], int(doc["seen"]), doc["time_zone"])

    @property
    def open_windows(self) -> int:
        return 0 if self.windows is None else self.windows.height


class WindowResult(NamedTuple):
    """What one call to :func:`process` returns; unpacks as ``closed, late, state``."""

    closed: pl.DataFrame
    """Windows closed by this batch, emitted once: keys, window_start, window_end, event_count, aggregates.
    Running totals: the new totals of every key the batch touched (window_start/window_end: the first and
    last event time seen for the key)."""
    late: pl.DataFrame
    """Events not counted in some window: the batch's columns plus reason ('late' or 'no_event_time'),
    window_start/window_end of the window missed (null for sessions and missing times) and the watermark
    the event met."""
    state: WindowState


def _as_time(epoch_us: pl.Expr, time_zone: str | None) -> pl.Expr:
    """Epoch microseconds -> Datetime("us") in the time column's zone (naive stays naive)."""
    moment = pl.from_epoch(epoch_us, "us")
    if time_zone is not None:
        moment = moment.dt.replace_time_zone("UTC").dt.convert_time_zone(time_zone)
    return moment


def _needs(spec: WindowSpec) -> dict[str, set[str]]:
    """Partial aggregates to keep per column: n, sum, m2, min, max, first, last, latest."""
    parts = {
        "count": {"n"},
        "sum": {"n", "sum"},
        "mean": {"n", "sum"},
        "std": {"n", "sum", "m2"},
        "min": {"min"},
        "max": {"max"},
        "first": {"first"},
        "last": {"last"},
        "latest": {"latest"},
    }
    return {col: set().union(*(parts[f] for f in fns)) for col, fns in spec.aggregations.items()}


def _check_batch(spec: WindowSpec, batch: pl.DataFrame) -> None:
    available = batch.columns
    for column in [spec.time_column, *spec.keys, *spec.aggregations]:
        if column not in batch.schema:
            raise WindowInputError(column, "is missing", available)
    dtype = batch.schema[spec.time_column]
    if not isinstance(dtype, pl.Datetime):
        raise WindowInputError(spec.time_column, f"is {dtype}, not a Datetime event time", available)


def _event_pieces(spec: WindowSpec, events: pl.DataFrame) -> pl.DataFrame:
    """One partial-aggregate row per (event, window) assignment, in the state's layout."""
    needs = _needs(spec)
    exprs: list[pl.Expr] = [
        *[pl.col(k) for k in spec.keys],
        pl.col(_START),
        pl.col(_END),
        pl.lit(1, pl.UInt32).alias(_COUNT),
        pl.col(_T).alias(_FIRST_T),
        pl.col(_SEQ).alias(_FIRST_SEQ),
        pl.col(_T).alias(_LAST_T),
        pl.col(_SEQ).alias(_LAST_SEQ),
    ]
    for col, parts in needs.items():
        value = pl.col(col)
        if "n" in parts:
            exprs.append(value.is_not_null().cast(pl.UInt32).alias(f"{col}__n"))
        if "sum" in parts:
            exprs.append(value.alias(f"{col}__sum"))
        if "m2" in parts:
            exprs.append(pl.when(value.is_null()).then(None).otherwise(0.0).alias(f"{col}__m2"))
        for part in ("min", "max", "first", "last"):
            if part in parts:
                exprs.append(value.alias(f"{col}__{part}"))
        if "latest" in parts:  # the event time and arrival number of the latest non-null value
            exprs.append(value.alias(f"{col}__latest"))
            exprs.append(pl.when(value.is_not_null()).then(pl.col(_T)).alias(f"{col}__latest_t"))
            exprs.append(pl.when(value.is_not_null()).then(pl.col(_SEQ)).alias(f"{col}__latest_seq"))
    return events.select(exprs)


def _merge(spec: WindowSpec, pieces: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Combine partial aggregates grouped by `by`; exact for counts, min/max/first/last; sums and the
    sum of squared deviations (Chan et al.) combine up to float rounding."""
    needs = _needs(spec)
    first_order, last_order = [_FIRST_T, _FIRST_SEQ], [_LAST_T, _LAST_SEQ]
    aggs: list[pl.Expr] = [
        pl.col(_START).min(),
        pl.col(_END).max(),
        pl.col(_COUNT).sum(),
        pl.col(_FIRST_T).min(),
        pl.col(_FIRST_SEQ).sort_by(first_order).first(),
        pl.col(_LAST_T).max(),
        pl.col(_LAST_SEQ).sort_by(last_order).last(),
    ]
    for col, parts in needs.items():
        n, s = pl.col(f"{col}__n"), pl.col(f"{col}__sum")
        if "n" in parts:
            aggs.append(n.sum())
        if "sum" in parts:
            aggs.append(s.sum())
        if "m2" in parts:
            piece_mean = s.cast(pl.Float64) / n
            group_mean = s.cast(pl.Float64).sum() / n.sum()
            spread = pl.when(n > 0).then(n * (piece_mean - group_mean) ** 2).otherwise(0.0)
            aggs.append((pl.col(f"{col}__m2").fill_null(0.0) + spread).sum().alias(f"{col}__m2"))
        if "min" in parts:
            aggs.append(pl.col(f"{col}__min").min())
        if "max" in parts:
            aggs.append(pl.col(f"{col}__max").max())
        if "first" in parts:
            aggs.append(pl.col(f"{col}__first").sort_by(first_order).first())
        if "last" in parts:
            aggs.append(pl.col(f"{col}__last").sort_by(last_order).last())
        if "latest" in parts:  # pieces without a non-null value (null time) sort first
            latest_order = [f"{col}__latest_t", f"{col}__latest_seq"]
            aggs.append(pl.col(f"{col}__latest").sort_by(latest_order, nulls_last=False).last())
            aggs.append(pl.col(f"{col}__latest_t").max())
            aggs.append(pl.col(f"{col}__latest_seq").sort_by(latest_order, nulls_last=False).last())
    kept = [a for a in aggs if a.meta.output_name() not in by]
    return pieces.group_by(by).agg(kept) if by else pieces.select(kept)


def _finish(spec: WindowSpec, windows: pl.DataFrame, time_zone: str | None) -> pl.DataFrame:
    """Partial aggregates -> the emitted frame: keys, window_start, window_end, event_count, aggregates;
    sorted by window_start and the keys (running totals: by the keys)."""
    out: list[pl.Expr] = [
        *[pl.col(k) for k in spec.keys],
        _as_time(pl.col(_START), time_zone).alias(_START),
        _as_time(pl.col(_END), time_zone).alias(_END),
        pl.col(_COUNT).cast(pl.UInt32),
    ]
    for col, fns in spec.aggregations.items():
        n, s = pl.col(f"{col}__n"), pl.col(f"{col}__sum")
        for fn in fns:
            name = f"{col}_{fn}"
            if fn == "count":
                expr = n.cast(pl.UInt32)
            elif fn == "sum":
                expr = pl.when(n > 0).then(s)
            elif fn == "mean":
                expr = pl.when(n > 0).then(s.cast(pl.Float64) / n)
            elif fn == "std":
                expr = pl.when(n > 1).then((pl.col(f"{col}__m2") / (n - 1)).sqrt())
            else:
                expr = pl.col(f"{col}__{fn}")
            out.append(expr.alias(name))
    order = spec.keys if spec.kind == "running" and spec.keys else [_START, *spec.keys]
    return windows.select(out).sort(order, nulls_last=True)


def process(spec: WindowSpec, state: WindowState, batch: pl.DataFrame) -> WindowResult:
    """Window one micro-batch (rows in arrival order) against the state kept from earlier batches.

    Returns the windows this batch closed, the events that were late (or had no event time), and the
    new state. Unpack as ``closed, late, state = process(spec, state, batch)``.
    """
    _check_batch(spec, batch)
    dtype = batch.schema[spec.time_column]
    assert isinstance(dtype, pl.Datetime)
    zone = dtype.time_zone
    if state.seen and state.time_zone != zone:
        raise WindowInputError(
            spec.time_column,
            f"has time zone {zone!r}, earlier batches had {state.time_zone!r}",
            batch.columns,
        )
    lateness = spec.us("allowed_lateness")

    events = batch.with_columns(
        pl.col(spec.time_column).dt.epoch("us").alias(_T),
        (pl.int_range(pl.len(), dtype=pl.Int64) + state.seen).alias(_SEQ),
    ).with_columns(
        # The watermark each event meets: the max event time that arrived before it.
        pl.max_horizontal(
            pl.col(_T).cum_max().forward_fill().shift(1), pl.lit(state.watermark, pl.Int64)
        ).alias(_WPREV)
    )
    batch_max = events.get_column(_T).max()
    candidates = [int(w) for w in (state.watermark, batch_max) if isinstance(w, int)]
    watermark = max(candidates) if candidates else None
    missing = events.filter(pl.col(_T).is_null()).with_columns(
        pl.lit("no_event_time").alias("reason"),
        pl.lit(None, pl.Int64).alias(_START),
        pl.lit(None, pl.Int64).alias(_END),
    )
    timed = events.filter(pl.col(_T).is_not_null())

    touched = None
    if spec.kind == "running":  # no event is late for a running total
        late = timed.clear().with_columns(
            pl.lit("late").alias("reason"),
            pl.lit(None, pl.Int64).alias(_START),
            pl.lit(None, pl.Int64).alias(_END),
        )
        pieces = _event_pieces(spec, timed.with_columns(pl.col(_T).alias(_START), pl.col(_T).alias(_END)))
        windows, touched = _running(spec, state.windows, pieces)
    elif spec.kind == "session":
        is_late = pl.col(_T) < pl.col(_WPREV) - lateness
        late = timed.filter(is_late).with_columns(
            pl.lit("late").alias("reason"),
            pl.lit(None, pl.Int64).alias(_START),
            pl.lit(None, pl.Int64).alias(_END),
        )
        fresh = timed.filter(is_late.not_() | pl.col(_WPREV).is_null()).with_columns(
            pl.col(_T).alias(_START), (pl.col(_T) + spec.us("gap")).alias(_END)
        )
        pieces = _event_pieces(spec, fresh)
        if state.windows is not None:
            pieces = pl.concat([state.windows, pieces.select(state.windows.columns)], how="vertical_relaxed")
        windows = _sessions(spec, pieces)
    else:
        size, hop = spec.us("size"), spec.us("hop") or spec.us("size")
        assigned = (
            timed.with_columns(pl.int_ranges(0, size // hop, dtype=pl.Int64).alias("__hw_j"))
            .explode("__hw_j")
            .with_columns(((pl.col(_T) // hop) * hop - pl.col("__hw_j") * hop).alias(_START))
            .with_columns((pl.col(_START) + size).alias(_END))
            .drop("__hw_j")
        )
        is_late = pl.col(_END) + lateness <= pl.col(_WPREV)
        late = assigned.filter(is_late).with_columns(pl.lit("late").alias("reason"))
        pieces = _event_pieces(spec, assigned.filter(is_late.not_() | pl.col(_WPREV).is_null()))
        if state.windows is not None:
            pieces = pl.concat([state.windows, pieces.select(state.windows.columns)], how="vertical_relaxed")
        windows = _merge(spec, pieces, [*spec.keys, _START]).select(pieces.columns)

    if touched is not None:  # running: every total stays; the totals of the keys the batch touched
        closed, still_open = _finish(spec, touched, zone), windows
    else:
        closes = pl.col(_END) + lateness <= watermark if watermark is not None else pl.lit(False)
        closed = _finish(spec, windows.filter(closes), zone)
        still_open = windows.filter(closes.not_())
    late_out = (
        pl.concat([missing, late.select(missing.columns)], how="vertical_relaxed")
        .sort(_SEQ, _START, nulls_last=True)
        .with_columns(
            _as_time(pl.col(_START), zone),
            _as_time(pl.col(_END), zone),
            _as_time(pl.col(_WPREV), zone).alias("watermark"),
        )
        .select([*batch.columns, "reason", _START, _END, "watermark"])
    )
    new_state = WindowState(still_open, watermark, state.seen + batch.height, zone)
    return WindowResult(closed, late_out, new_state)


def _running(
    spec: WindowSpec, totals: pl.DataFrame | None, pieces: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Merge the batch's events (`pieces`) into the per-key totals: (every key's totals, the totals of the
    keys the batch touched). Only the touched keys' rows are regrouped."""
    keys = spec.keys
    if pieces.height == 0:
        return (pieces if totals is None else totals), pieces
    if totals is None:
        merged = _merge(spec, pieces, keys).select(pieces.columns)
        return merged, merged
    if keys:
        touched_keys = pieces.select(keys).unique()
        old = totals.join(touched_keys, on=keys, how="semi", nulls_equal=True)
        rest = totals.join(touched_keys, on=keys, how="anti", nulls_equal=True)
    else:
        old, rest = totals, totals.clear()
    both = pl.concat([old, pieces.select(old.columns)], how="vertical_relaxed")
    merged = _merge(spec, both, keys).select(totals.columns)
    return pl.concat([rest, merged], how="vertical_relaxed"), merged


def _sessions(spec: WindowSpec, pieces: pl.DataFrame) -> pl.DataFrame:
    """Merge session pieces (open sessions and fresh events) per key: sorted by start, a piece joins the
    session before it when it starts less than `gap` after the latest event seen so far in that session."""
    keys = spec.keys
    ordered = pieces.sort([*keys, _START, _FIRST_SEQ], nulls_last=True)
    over = keys or None
    reach = pl.col(_END).cum_max().shift(1).over(over) if over else pl.col(_END).cum_max().shift(1)
    new_session = reach.is_null() | (pl.col(_START) >= reach)
    ordered = ordered.with_columns(new_session.cast(pl.UInt32).cum_sum().alias(_SID))
    merged = _merge(spec, ordered, [*keys, _SID])
    # A session's end is its last event time plus the gap: the max of its pieces' ends.
    return merged.select(pieces.columns)


def flush(spec: WindowSpec, state: WindowState) -> tuple[pl.DataFrame, WindowState]:
    """Close every open window (end of stream, end of a replay); the watermark is kept. Running totals
    never close: every key's totals are emitted and kept in the state."""
    if state.windows is None:  # nothing was ever seen: an empty frame with the output columns
        moment = pl.Datetime("us", state.time_zone)
        dtypes: dict[str, pl.DataType] = {_START: moment, _END: moment, _COUNT: pl.UInt32()}
        return pl.DataFrame(schema={c: dtypes.get(c, pl.Null()) for c in spec.output_columns()}), state
    closed = _finish(spec, state.windows, state.time_zone)
    if spec.kind == "running":
        return closed, state
    return closed, replace(state, windows=state.windows.clear())
