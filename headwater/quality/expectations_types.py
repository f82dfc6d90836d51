"""expect_column_values_to_be_of_type as GX's pandas backend sees a Polars frame after
`frame.to_pandas()`."""

from __future__ import annotations

from typing import Any, ClassVar

import polars as pl
from pydantic import Field, field_validator

from headwater.errors import PermanentError
from headwater.quality.expectations_base import AggregateExpectation, QualityContext, register

OBJECT_NAMES = frozenset({"object", "object_", "O"})
_INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
_UNITS = ["", "[ns]", "[us]", "[ms]", "[s]", "[D]"]

# type_ -> (the pandas column types it matches: dtype.type.__name__; the Python value types it matches
# in an object column, where GX checks isinstance per value). Derived from GX's resolution (np.dtype,
# then pandas attributes, then builtins) for the names that can match a Polars column.
TYPE_NAMES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    **{name: (frozenset({name}), frozenset()) for name in _INTS},
    **{name: (frozenset({"int64"}), frozenset({"bool"})) for name in ("int", "long")},  # bool is an int
    **{name: (frozenset({"int64"}), frozenset()) for name in ("int_", "intp", "i8")},
    **{name: (frozenset({"float64"}), frozenset()) for name in ("float", "float64", "double", "f8")},
    **{name: (frozenset({"float32"}), frozenset()) for name in ("float32", "single")},
    **{name: (frozenset({"float16"}), frozenset()) for name in ("float16", "half")},
    "str": (frozenset({"str"}), frozenset()),
    **{name: (frozenset({"object_"}), frozenset()) for name in OBJECT_NAMES},
    "bool": (frozenset({"bool"}), frozenset({"bool"})),
    **{name: (frozenset({"bool"}), frozenset()) for name in ("bool_", "?")},
    **{f"datetime64{u}": (frozenset({"datetime64"}), frozenset()) for u in _UNITS},
    **{f"M8{u}": (frozenset({"datetime64"}), frozenset()) for u in _UNITS},
    **{f"timedelta64{u}": (frozenset({"timedelta64"}), frozenset()) for u in _UNITS},
    **{f"m8{u}": (frozenset({"timedelta64"}), frozenset()) for u in _UNITS},
    "Timestamp": (frozenset({"Timestamp"}), frozenset()),
    "CategoricalDtypeType": (frozenset({"CategoricalDtypeType"}), frozenset()),
    "Decimal": (frozenset(), frozenset({"Decimal"})),
    "time": (frozenset(), frozenset({"time"})),
    "bytes": (frozenset(), frozenset({"bytes"})),
    "dict": (frozenset(), frozenset({"dict"})),
}

# Polars columns that pandas holds as object, and the Python type of their values.
_OBJECT_VALUES: dict[type[pl.DataType], str] = {
    pl.Decimal: "Decimal",
    pl.Time: "time",
    pl.Binary: "bytes",
    pl.Struct: "dict",
    pl.List: "ndarray",
    pl.Array: "ndarray",
    pl.Null: "",
}


def pandas_type(dtype: pl.DataType, column: str) -> tuple[str | None, str | None, str | None]:
    """(pandas type name without nulls, with nulls, object value type) for a Polars dtype: integers
    holding nulls become float64 and booleans holding nulls become object columns of bool."""
    if dtype.is_integer() and str(dtype).lower() in _INTS:
        return str(dtype).lower(), "float64", None
    if dtype in (pl.Float16, pl.Float32, pl.Float64):
        return str(dtype).lower(), str(dtype).lower(), None
    if dtype == pl.Boolean:
        return "bool", None, "bool"
    if dtype == pl.String:
        return "str", "str", None
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return "CategoricalDtypeType", "CategoricalDtypeType", None
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return "Timestamp", "Timestamp", None
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return "datetime64", "datetime64", None
    if isinstance(dtype, pl.Duration):
        return "timedelta64", "timedelta64", None
    for polars_type, value_type in _OBJECT_VALUES.items():
        if dtype == polars_type or isinstance(dtype, polars_type):
            return None, None, value_type
    raise PermanentError(
        f"expect_column_values_to_be_of_type: column {column!r} is {dtype}, which pandas cannot hold",
        hint="cast the column to a type with a pandas equivalent, or drop the rule",
    )


@register
class OfType(AggregateExpectation):
    """GX's pandas backend checks the column's dtype (an aggregate result, observed_value the dtype's
    type name, `mostly` ignored) except when the column is `object` and type_ is not: then it checks
    each value's Python type with isinstance (a map result). Headwater keeps one result shape, the
    aggregate one: observed is GX's observed_value, or `object_[<value type>]` for an object column
    (`object_[]` when every value is missing, which passes); per-value failures there are all
    or nothing, since a Polars column holds one type.

    What GX sees follows `frame.to_pandas()`: integers holding a null become float64, booleans
    holding a null become object (of bool), strings are pandas' `str`, dates and naive datetimes
    datetime64 (so 'datetime64[ns]' matches any unit, 'datetime' nothing), zoned datetimes
    Timestamp, categoricals CategoricalDtypeType, decimals / times / binary / structs / lists
    object. 'int' also matches bool values (bool subclasses int); 'string', 'boolean', 'category'
    and 'Int64' resolve to nothing in GX and are rejected here."""

    type: ClassVar[str] = "expect_column_values_to_be_of_type"
    description: ClassVar[str] = "the column has type_ as GX's pandas backend names it (int64, str, ...)"
    column: str
    type_: str
    mostly: float = Field(1.0, ge=0.0, le=1.0, description="Only used on object columns, as GX does.")

    @field_validator("type_")
    @classmethod
    def _known(cls, type_: str) -> str:
        if type_ not in TYPE_NAMES:
            raise ValueError(
                f"unknown type_ {type_!r}: use a pandas/numpy type name such as int64, float64, str, "
                f"bool, datetime64[ns], Timestamp, object (all: {', '.join(sorted(TYPE_NAMES))})"
            )
        return type_

    def observe(self, schema: pl.Schema, ctx: QualityContext) -> pl.Expr:
        if self.column not in schema:
            raise PermanentError(f"{self.type}: the frame has no column {self.column!r}")
        plain, with_nulls, value_type = pandas_type(schema[self.column], self.column)
        col = pl.col(self.column)
        if value_type is None or self.type_ in OBJECT_NAMES:
            values = pl.lit("object_")
        else:
            values = (
                pl.when(col.count() == 0)
                .then(pl.lit("object_[]"))
                .otherwise(pl.lit(f"object_[{value_type}]"))
            )
        if plain is None:
            return values
        return (
            pl.when(col.null_count() == 0)
            .then(pl.lit(plain))
            .otherwise(pl.lit(with_nulls) if with_nulls is not None else values)
        )

    def check(self, observed: Any) -> bool:
        dtype_names, value_names = TYPE_NAMES[self.type_]
        if isinstance(observed, str) and observed.startswith("object_["):
            value_type = observed.removeprefix("object_[").removesuffix("]")
            return not value_type or value_type in value_names or self.mostly == 0.0
        return observed in dtype_names
