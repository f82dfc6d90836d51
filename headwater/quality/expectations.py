"""Expectations evaluated on Polars. Each class mirrors one Great Expectations 1.x expectation type
(same name, same kwargs, same semantics: map expectations ignore nulls except not_null, `mostly`
allows a fraction of failures); GX stays the reference and tests/quality proves both agree.

A *map* expectation gives a boolean expression that is true on the rows that fail it, so failing
rows can be quarantined. An *aggregate* expectation observes one value for the whole table.

The classes live in expectations_<group>.py modules; importing this module registers them all:
- column: not_null, unique, between, in_set, not_in_set, (not_)match_regex, value_lengths_between,
  column_pair_values_a_to_be_greater_than_b, compound_columns_to_be_unique;
- dates: match_strftime_format, dateutil_parseable;
- types: values_to_be_of_type;
- aggregate: table row count, table columns match set, column mean/min/max/median/stdev,
  proportion of unique values;
- headwater: Headwater's extensions, which have no GX class: expect_column_values_to_be_in_table,
  expect_column_max_to_be_recent, expect_row_condition.
"""

from __future__ import annotations

from headwater.quality.expectations_aggregate import (
    ColumnStatBetween,
    MaxBetween,
    MeanBetween,
    MedianBetween,
    MinBetween,
    ProportionOfUniqueBetween,
    RowCountBetween,
    StdevBetween,
    TableColumnsMatchSet,
)
from headwater.quality.expectations_base import (
    EXPECTATIONS,
    AggregateExpectation,
    ColumnMap,
    Expectation,
    MapExpectation,
    QualityContext,
    between,
    register,
)
from headwater.quality.expectations_column import (
    Between,
    CompoundColumnsUnique,
    InSet,
    MatchRegex,
    NotInSet,
    NotMatchRegex,
    NotNull,
    PairAGreaterThanB,
    Unique,
    ValueLengthsBetween,
)
from headwater.quality.expectations_dates import DateutilParseable, MatchStrftimeFormat
from headwater.quality.expectations_headwater import InTable, MaxToBeRecent, RowCondition
from headwater.quality.expectations_types import OfType

__all__ = [
    "EXPECTATIONS",
    "AggregateExpectation",
    "Between",
    "ColumnMap",
    "ColumnStatBetween",
    "CompoundColumnsUnique",
    "DateutilParseable",
    "Expectation",
    "InSet",
    "InTable",
    "MapExpectation",
    "MatchRegex",
    "MatchStrftimeFormat",
    "MaxBetween",
    "MaxToBeRecent",
    "MeanBetween",
    "MedianBetween",
    "MinBetween",
    "NotInSet",
    "NotMatchRegex",
    "NotNull",
    "OfType",
    "PairAGreaterThanB",
    "ProportionOfUniqueBetween",
    "QualityContext",
    "RowCondition",
    "RowCountBetween",
    "StdevBetween",
    "TableColumnsMatchSet",
    "Unique",
    "ValueLengthsBetween",
    "between",
    "register",
]
