"""A 10-op transform chain over 3.37M flights rows through Headwater's op machinery (parse_ops +
run_ops, plus chain_lineage, which every run computes) and, in the same run, the same chain
hand-written in Polars lazy. Prints the times and the ratio headwater/hand-written of the medians
(target <= 1.2).

Speed is measured, never asserted: the exit code only reflects correctness (both sides give equal
frames, polars.testing.assert_frame_equal, in every repetition). Run from the repository root:

    .venv/bin/python bench/transforms.py [--repeat 5]

Fairness:
- the input is what a transform step gets in a pipeline: the flights frame in memory (read once,
  untimed) passed as `.lazy()`, and the other steps' outputs (weather with time_hour parsed as
  UTC datetimes, airlines) as lazy frames of in-memory frames (headwater/pipeline/steps.py);
- the ops are YAML text read with the spec loader's YAML rules, then parse_ops, as a spec gives them;
- the reference hand-written side uses the Polars options Headwater's ops choose (joins:
  coalesce=True, maintain_order="left", validate; group_by(maintain_order=True); a stable sort
  with nulls_last=True), so the ratio measures the machinery alone. A third side, the same chain
  with Polars' default ordering options, shows what those choices cost;
- one untimed warm-up of every side; then --repeat repetitions (default 5) with the order of the
  sides alternating; the table shows the median and the minimum. The machine is shared, so single
  timings vary.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import polars as pl
import yaml
from flights_data import PARQUET, prepare_flights, read_package_csv
from polars.testing import assert_frame_equal

import headwater.transform  # noqa: F401  (registers every op)
from headwater.spec.loader import SpecYamlLoader
from headwater.transform.registry import Op, OpContext, chain_lineage, parse_ops, run_ops

TARGET_RATIO = 1.2

OPS_YAML = """\
- make_date: {year: year, month: month, day: day, as: flight_date}
- derive:
    gain: dep_delay - arr_delay
    speed: distance / air_time * 60
- filter: dep_time IS NOT NULL  # not cancelled
- fill_null: {values: {tailnum: unknown}}
- cast: {time_hour: datetime_utc}
- join: {with: weather, on: [origin, time_hour], how: left, select: [wind_speed], validate: "m:1"}
- join: {with: airlines, on: [carrier], how: left, select: [name], validate: "m:1"}
- rename: {name: carrier_name, speed: mph}
- aggregate:
    by: [flight_date, carrier, carrier_name]
    aggs:
      flights: {fn: count}
      diverted: {fn: count_null, column: arr_delay}
      planes: {fn: count_distinct, column: tailnum}
      dep_delay_mean: {fn: mean, column: dep_delay, round: 2}
      arr_delay_mean: {fn: mean, column: arr_delay, round: 2}
      gain_mean: {fn: mean, column: gain, round: 2}
      mph_median: {fn: median, column: mph}
      distance_total: {fn: sum, column: distance}
      wind_speed_mean: {fn: mean, column: wind_speed, round: 1}
- sort: {by: [flight_date, carrier]}
"""


@dataclass
class Case:
    """One timed case, measured once per repetition."""

    name: str
    reference: str | None = None
    """The case whose median this one's is divided by (the ratio column)."""
    seconds: list[float] = field(default_factory=list)
    """Wall-clock seconds per repetition."""
    cpu: list[float] = field(default_factory=list)
    """CPU seconds of the process (all threads) per repetition: less sensitive to other load."""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def add(self, seconds: float, cpu: float) -> None:
        self.seconds.append(seconds)
        self.cpu.append(cpu)


T = TypeVar("T")


def measure(run: Callable[[], T]) -> tuple[T, float, float]:
    """run's result, wall-clock seconds and process CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - wall, time.process_time() - cpu


@dataclass(frozen=True)
class Inputs:
    flights: pl.DataFrame
    weather: pl.DataFrame
    airlines: pl.DataFrame

    def context(self) -> OpContext:
        return OpContext({"weather": self.weather.lazy(), "airlines": self.airlines.lazy()})


# ------------------------------------------------------------------ data


def load_inputs() -> Inputs:
    prepare_flights()
    weather = read_package_csv("weather.csv").with_columns(
        pl.col("time_hour").str.to_datetime(time_zone="UTC")  # as the weather step's own cast would
    )
    return Inputs(pl.read_parquet(PARQUET), weather, read_package_csv("airlines.csv"))


# ------------------------------------------------------------------ the two sides


def raw_ops() -> list[dict[str, Any]]:
    """The chain as a pipeline spec's `ops:` gives it (the spec loader's YAML rules: `on:` is a key)."""
    raw: list[dict[str, Any]] = yaml.load(OPS_YAML, Loader=SpecYamlLoader)
    return raw


def headwater_run(inputs: Inputs, ops: list[Op]) -> pl.DataFrame:
    out, _metrics = run_ops(inputs.flights.lazy(), ops, inputs.context())
    return out


def hand_written(inputs: Inputs, *, headwater_options: bool = True) -> pl.DataFrame:
    """The chain in plain Polars, with the semantics of Headwater's ops (a SQL sum, count_distinct
    without nulls, a strict parse of time_hour as UTC). With headwater_options, the ordering options
    the ops pass (headwater/transform/ops/combine.py, aggregate.py, rows.py); without, Polars'
    defaults: the joins do not promise the left order, the group_by does not keep first-seen order and
    the sort is not stable (the sort keys are unique per group, so the result is the same).

    What those choices cost is the "Polars defaults" row. On the 2-core bench machine (Polars 2.1,
    streaming engine) the defaults were no faster: the group_by keeps the order of ~5,400 groups and
    the stable sort is over those, and a left join keeps the left order at little cost."""
    join_order: Any = "left" if headwater_options else None
    weather = inputs.weather.lazy().select("origin", "time_hour", "wind_speed")
    airlines = inputs.airlines.lazy().select("carrier", "name")
    return (
        inputs.flights.lazy()
        .with_columns(pl.date("year", "month", "day").alias("flight_date"))
        .with_columns(
            (pl.col("dep_delay") - pl.col("arr_delay")).alias("gain"),
            (pl.col("distance") / pl.col("air_time") * 60).alias("speed"),
        )
        .filter(pl.col("dep_time").is_not_null())
        .with_columns(pl.col("tailnum").fill_null("unknown"))
        .with_columns(pl.col("time_hour").str.to_datetime(time_zone="UTC"))
        .join(
            weather,
            on=["origin", "time_hour"],
            how="left",
            validate="m:1",
            coalesce=True,
            maintain_order=join_order,
        )
        .join(airlines, on="carrier", how="left", validate="m:1", coalesce=True, maintain_order=join_order)
        .rename({"name": "carrier_name", "speed": "mph"})
        .group_by("flight_date", "carrier", "carrier_name", maintain_order=headwater_options)
        .agg(
            pl.len().alias("flights"),
            pl.col("arr_delay").null_count().alias("diverted"),
            pl.col("tailnum").drop_nulls().n_unique().alias("planes"),  # count_distinct ignores nulls
            pl.col("dep_delay").mean().round(2).alias("dep_delay_mean"),
            pl.col("arr_delay").mean().round(2).alias("arr_delay_mean"),
            pl.col("gain").mean().round(2).alias("gain_mean"),
            pl.col("mph").median().alias("mph_median"),
            # sum as in SQL: a group without values sums to null, not 0
            pl.when(pl.col("distance").count() > 0).then(pl.col("distance").sum()).alias("distance_total"),
            pl.col("wind_speed").mean().round(1).alias("wind_speed_mean"),
        )
        .sort("flight_date", "carrier", nulls_last=headwater_options, maintain_order=headwater_options)
        .collect()
    )


# ------------------------------------------------------------------ bench

HW = "headwater run_ops"
HAND = "hand-written (Headwater's options)"
DEFAULTS = "hand-written (Polars defaults)"
PARSE = "headwater parse_ops"
LINEAGE = "headwater chain_lineage"
PER_RUN = "headwater parse + lineage + run_ops"


class Bench:
    def __init__(self, inputs: Inputs, ops: list[Op]) -> None:
        self.inputs, self.ops = inputs, ops
        self.cases = {
            c.name: c
            for c in (
                Case(HW, HAND),
                Case(HAND),
                Case(DEFAULTS, HAND),
                Case(PARSE),
                Case(LINEAGE),
                Case(PER_RUN, HAND),
            )
        }
        self.reference: pl.DataFrame | None = None
        self.failures: list[str] = []

    def check(self, label: str, result: pl.DataFrame) -> None:
        """Every result must equal the first hand-written one (floats to assert_frame_equal's rtol)."""
        if self.reference is None:
            self.reference = result
            return
        try:
            assert_frame_equal(result, self.reference)
        except AssertionError as exc:
            self.failures.append(f"{label}: {str(exc).strip().splitlines()[0]}")

    def timed(self, case: str, run: Callable[[], pl.DataFrame]) -> None:
        result, seconds, cpu = measure(run)
        self.cases[case].add(seconds, cpu)
        self.check(case, result)

    def sides(self) -> list[tuple[str, Callable[[], pl.DataFrame]]]:
        return [
            (HAND, lambda: hand_written(self.inputs)),
            (HW, lambda: headwater_run(self.inputs, self.ops)),
            (DEFAULTS, lambda: hand_written(self.inputs, headwater_options=False)),
        ]

    def warm_up(self) -> None:
        for name, run in self.sides():
            started = time.perf_counter()
            self.check(f"warm-up {name}", run())
            print(f"warm-up {name}: {time.perf_counter() - started:.2f} s")
        self.lineage()

    def lineage(self) -> tuple[float, float]:
        """chain_lineage as a run computes it; its schema must be the result's."""
        (lineage, schema), seconds, cpu = measure(
            lambda: chain_lineage(self.inputs.flights.schema, self.ops, self.inputs.context())
        )
        if self.reference is not None and (schema != self.reference.schema or list(lineage) != list(schema)):
            self.failures.append(f"chain_lineage: schema {schema} vs result {self.reference.schema}")
        return seconds, cpu

    def repetition(self, index: int) -> None:
        sides = self.sides()
        if index % 2:
            sides.reverse()
        for name, run in sides:
            self.timed(name, run)
        raw = raw_ops()
        _, parse, parse_cpu = measure(lambda: parse_ops(raw))
        lineage, lineage_cpu = self.lineage()
        self.cases[PARSE].add(parse, parse_cpu)
        self.cases[LINEAGE].add(lineage, lineage_cpu)
        hw = self.cases[HW]
        self.cases[PER_RUN].add(parse + lineage + hw.seconds[-1], parse_cpu + lineage_cpu + hw.cpu[-1])
        print(
            f"repetition {index + 1}: "
            + ", ".join(f"{name} {self.cases[name].seconds[-1]:.3f} s" for name, _ in sides)
            + f", parse_ops {parse * 1000:.1f} ms, chain_lineage {lineage * 1000:.1f} ms"
        )


def print_table(cases: dict[str, Case]) -> None:
    width = max(len(name) for name in cases)
    print(
        f"\n{'case':<{width}}  {'median s':>9}  {'min s':>9}  {'ratio':>5}  "
        f"{'median cpu s':>12}  {'cpu ratio':>9}"
    )
    for case in cases.values():
        cpu = statistics.median(case.cpu)
        ratio = cpu_ratio = ""
        if case.reference:
            ratio = f"{case.median / cases[case.reference].median:.2f}"
            cpu_ratio = f"{cpu / statistics.median(cases[case.reference].cpu):.2f}"
        print(
            f"{case.name:<{width}}  {case.median:>9.4f}  {min(case.seconds):>9.4f}  {ratio:>5}  "
            f"{cpu:>12.4f}  {cpu_ratio:>9}"
        )
    print(
        f"median of {len(cases[HW].seconds)} repetition(s); ratio = median / median of {HAND!r} "
        f"(target <= {TARGET_RATIO}); cpu = process CPU seconds, all threads"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of every side (median shown)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    inputs = load_inputs()
    ops = parse_ops(raw_ops())
    print(
        f"polars {pl.__version__}, {pl.thread_pool_size()} threads; flights {inputs.flights.shape}, "
        f"weather {inputs.weather.shape}, airlines {inputs.airlines.shape}; {len(ops)} ops: "
        + " -> ".join(op.name for op in ops)
    )
    bench = Bench(inputs, ops)
    bench.warm_up()
    for index in range(args.repeat):
        bench.repetition(index)
    print_table(bench.cases)
    hw, hand = bench.cases[HW], bench.cases[HAND]
    ratio = hw.median / hand.median
    print(
        f"headwater / hand-written (medians): {ratio:.2f} ({'within' if ratio <= TARGET_RATIO else 'over'} "
        f"the {TARGET_RATIO}x target); of the minimums: {min(hw.seconds) / min(hand.seconds):.2f}"
    )
    if bench.reference is not None:
        print(f"result: {bench.reference.shape[0]:,} rows x {bench.reference.shape[1]} columns")
    for failure in bench.failures:
        print(f"ERROR: {failure}")
    print(f"total runtime {time.perf_counter() - began:.1f} s")
    return 0 if not bench.failures and bench.reference is not None else 1


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    raise SystemExit(main())
