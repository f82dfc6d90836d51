"""The expectation base classes, the registry and the context rules read besides the frame."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from headwater.errors import PermanentError

EXPECTATIONS: dict[str, type[Expectation]] = {}


@dataclass
class QualityContext:
    """What expectations may read besides the frame: other tables' values (referential integrity)
    and the evaluation time (freshness)."""

    tables: Mapping[str, pl.DataFrame] = field(default_factory=dict)
    now: Any = None


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: ClassVar[str]
    kind: ClassVar[Literal["map", "aggregate"]]
    description: ClassVar[str]

    def columns(self) -> list[str]:
        cols = [getattr(self, n) for n in ("column", "column_A", "column_B") if getattr(self, n, None)]
        return cols + list(getattr(self, "column_list", None) or [])

    # map expectations
    def failing(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        """True on the rows that break the expectation (null where the row is not considered)."""
        raise NotImplementedError

    def considered(self) -> pl.Expr:
        """Rows the expectation looks at (GX: non-missing values of its columns)."""
        return (
            pl.all_horizontal(pl.col(c).is_not_null() for c in self.columns())
            if self.columns()
            else every_row()
        )

    # aggregate expectations
    def observe(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        raise NotImplementedError

    def check(self, observed: Any) -> bool:
        raise NotImplementedError

    def references(self) -> list[str]:
        """Other tables the expectation reads from QualityContext.tables."""
        return []


def every_row() -> pl.Expr:
    """True on every row (a bare `pl.lit(True)` would sum to 1, not to the row count)."""
    return pl.repeat(True, pl.len())


def register(cls: type[Expectation]) -> type[Expectation]:
    EXPECTATIONS[cls.type] = cls
    return cls


def _comparable(value: Any, bound: Any) -> Any:
    """GX compares a date/time statistic with a string bound by parsing the bound (dateutil there,
    ISO 8601 here); pandas turns dates into timestamps, so a date statistic compares as midnight."""
    if isinstance(value, datetime | date) and isinstance(bound, str):
        try:
            parsed = datetime.fromisoformat(bound)
        except ValueError:
            raise PermanentError(
                f"cannot compare {value.isoformat()} with the bound {bound!r}: not an ISO 8601 date or time",
                hint="write date/time bounds as ISO 8601, e.g. 2013-12-31 or 2013-12-31T23:00:00",
            ) from None
        if isinstance(value, datetime) and (value.tzinfo is None) != (parsed.tzinfo is None):
            raise PermanentError(
                f"cannot compare {value.isoformat()} with the bound {bound!r}: one has a time zone, the "
                "other does not",
                hint="write the bound with the same kind of time (an offset such as +00:00, or none)",
            )
        return parsed
    return bound


def between(value: Any, low: Any, high: Any, strict_min: bool = False, strict_max: bool = False) -> bool:
    if value is None or value != value:  # None or NaN: GX reports observed None and fails
        return False
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    low, high = _comparable(value, low), _comparable(value, high)
    if low is not None and (value <= low if strict_min else value < low):
        return False
    return not (high is not None and (value >= high if strict_max else value > high))


def check_bounds(
    low: Any, high: Any, strict_min: bool = False, strict_max: bool = False, floor: float | None = None
) -> None:
    """Reject bounds no value can meet: min above max, an empty strict range, a max below `floor`."""
    try:
        if low is not None and high is not None:
            if low > high:
                raise ValueError(f"min_value {low!r} is greater than max_value {high!r}")
            if low == high and (strict_min or strict_max):
                raise ValueError(f"min_value = max_value = {low!r} with a strict bound leaves no value")
        if floor is not None and high is not None and (high < floor or (strict_max and high == floor)):
            raise ValueError(
                f"max_value {high!r} leaves no possible value (the smallest possible is {floor})"
            )
    except TypeError:
        raise ValueError(f"min_value {low!r} and max_value {high!r} cannot be compared") from None


def string_column(column: str, schema: pl.Schema, rule: str) -> pl.Expr:
    """The column as strings: String, Categorical and Enum columns only (GX: 'only works for
    string-type values'; pandas would stringify numbers as it prints them)."""
    dtype = schema.get(column)
    if dtype is None:
        raise PermanentError(
            f"{rule}: the frame has no column {column!r}", hint="check the rule's column against the step"
        )
    if dtype == pl.String:
        return pl.col(column)
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return pl.col(column).cast(pl.String)
    raise PermanentError(
        f"{rule} works on strings, but column {column!r} is {dtype}",
        hint="apply the rule to the raw string column, before it is cast",
    )


class MapExpectation(Expectation):
    kind: ClassVar[Literal["map", "aggregate"]] = "map"
    mostly: float = Field(1.0, ge=0.0, le=1.0, description="Fraction of considered values that must pass.")


class ColumnMap(MapExpectation):
    column: str


class AggregateExpectation(Expectation):
    kind: ClassVar[Literal["map", "aggregate"]] = "aggregate"
