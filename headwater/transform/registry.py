"""The op registry. Each op is a pydantic model of its parameters with a one-line description and an
example; `apply` turns a LazyFrame into a LazyFrame."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, get_args, get_origin

import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError

from headwater.transform.lineage import Lineage, compose, direct, identity

OP_REGISTRY: dict[str, type[Op]] = {}


@dataclass
class OpContext:
    """What an op may read besides its input: the outputs of the steps its step depends on."""

    frames: Mapping[str, pl.LazyFrame] = field(default_factory=dict)

    def frame(self, step: str) -> pl.LazyFrame:
        if step not in self.frames:
            raise KeyError(f"step {step!r} is not an input of this step; add it to depends_on")
        return self.frames[step]


CATEGORIES = (
    "columns",
    "rows",
    "strings",
    "dates",
    "numbers",
    "structure",
    "combine",
    "aggregate",
    "privacy",
)


class Op(BaseModel):
    """Base of every op. Subclasses set `name`, `category`, `description`, `example`, implement
    `apply`, and declare the lineage of the columns they create or change in `produces`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    name: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str]
    example: ClassVar[str]
    shorthand: ClassVar[str | None] = None
    """Parameter that a bare (non-mapping) value fills, e.g. `- filter: "x > 1"`."""

    def apply(self, frame: pl.LazyFrame, ctx: OpContext) -> pl.LazyFrame:
        raise NotImplementedError

    def references(self) -> list[str]:
        """Other steps this op reads (for validation of depends_on)."""
        return []

    def produces(self, schema: pl.Schema, ctx: OpContext) -> Lineage:
        """Lineage of every output column the op creates or whose values it changes, in terms of its
        input columns (Origin frame "") or another step's (frame = step name). Columns not listed
        that keep their name are `direct`."""
        return {}

    def row_inputs(self) -> list[str]:
        """Input columns that decide which rows are kept or how they are ordered (not values)."""
        return []

    def matching_inputs(self) -> dict[str, list[str]]:
        """Columns of other steps' outputs that decide which rows match (join keys), by step."""
        return {}

    def counters(self, schema: pl.Schema) -> dict[str, pl.Expr]:
        """Figures worth recording about this op's input (e.g. values a lenient cast turned to null),
        as aggregate expressions over the op's input; they land in the step's metrics."""
        return {}

    def output_schema(self, schema: pl.Schema, ctx: OpContext) -> pl.Schema:
        """The output schema for an input schema, without touching data (Polars' lazy schema)."""
        empty = OpContext({k: pl.LazyFrame(schema=v.collect_schema()) for k, v in ctx.frames.items()})
        return self.apply(pl.LazyFrame(schema=schema), empty).collect_schema()

    def lineage(self, schema: pl.Schema, ctx: OpContext, output: pl.Schema | None = None) -> Lineage:
        """Lineage of every output column (`output`: the output schema, when already known)."""
        declared = self.produces(schema, ctx)
        out: Lineage = {}
        for column in output if output is not None else self.output_schema(schema, ctx):
            if column in declared:
                out[column] = declared[column]
            elif column in schema:
                out[column] = direct(column)
            else:
                raise LineageUndeclared(
                    f"op {self.name} makes column {column!r} but declares no lineage for it"
                )
        return out


class LineageUndeclared(RuntimeError):
    """An op produced a column its `produces` does not account for: a bug in the op."""


OpT = TypeVar("OpT", bound=type[Op])


def register(cls: OpT) -> OpT:
    if cls.name in OP_REGISTRY:
        raise ValueError(f"op {cls.name!r} registered twice")
    OP_REGISTRY[cls.name] = cls
    return cls


class OpSchemaError(ValueError):
    """An op does not fit the columns it gets (unknown column, wrong type), found from schemas alone."""

    def __init__(self, position: int, op: str, error: BaseException, columns: list[str]) -> None:
        self.position, self.op, self.columns = position, op, columns
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        text = text.split("; valid columns")[0]  # the hint lists them
        self.hint = f"the columns it gets are: {', '.join(columns)}"
        super().__init__(f"op #{position + 1} ({op}): {type(error).__name__}: {text}")


class OpParseError(ValueError):
    def __init__(self, position: int, op: str, message: str, hint: str | None = None) -> None:
        self.position, self.op, self.hint = position, op, hint
        super().__init__(message)


def parse_op(raw: Mapping[str, Any], position: int) -> Op:
    ((op_name, params),) = raw.items()
    cls = OP_REGISTRY.get(op_name)
    if cls is None:
        known = ", ".join(sorted(OP_REGISTRY))
        raise OpParseError(position, op_name, f"unknown op {op_name!r}", f"use one of: {known}")
    if isinstance(params, dict) and cls.shorthand is not None and _takes_mapping(cls, cls.shorthand):
        fields = {f.alias or n for n, f in cls.model_fields.items()} | set(cls.model_fields)
        if not fields & set(params):  # e.g. `rename: {name: carrier_name}`: the mapping is the shorthand
            params = {cls.shorthand: params}
    if not isinstance(params, dict):
        if cls.shorthand is None:
            raise OpParseError(
                position, op_name, f"{op_name} takes a mapping of parameters", f"e.g. {cls.example}"
            )
        params = {cls.shorthand: params}
    try:
        return cls.model_validate(params)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        unknown = [e for e in errors if e["type"] == "extra_forbidden"]
        first = unknown[0] if unknown else errors[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        hint = f"e.g. {cls.example}"
        if unknown:  # a misspelt parameter: name it, and what is allowed where it is
            parent = tuple(first["loc"][:-1])
            allowed = ", ".join(_keys_at(cls, parent)) or "(none)"
            names = ", ".join(repr(e["loc"][-1]) for e in unknown if tuple(e["loc"][:-1]) == parent)
            what = f"{op_name} {'.'.join(map(str, parent))}" if parent else op_name
            msg = f"unknown parameter {names}; {what} takes: {allowed}"
            where = ".".join(str(p) for p in parent)
        cause = (first.get("ctx") or {}).get("error")
        if getattr(cause, "hint", None):
            hint = f"{cause.hint}; {hint}"  # type: ignore[union-attr]
        raise OpParseError(
            position, op_name, f"{op_name}: {where + ': ' if where else ''}{msg}", hint
        ) from None


def _keys_at(cls: type[Op], loc: tuple[Any, ...]) -> list[str]:
    """The keys the nested parameter model at `loc` (e.g. ("aggs", "total")) takes, sorted."""
    annotation: Any = cls
    for part in loc:
        annotation = _step_into(annotation, part)
        if annotation is None:
            return []
    model = _model_in(annotation)
    return sorted(f.alias or n for n, f in model.model_fields.items()) if model is not None else []


def _step_into(annotation: Any, part: Any) -> Any:
    """The annotation one location part further in: a dict's value, a list's item, a model's field."""
    pending = [annotation]
    while pending:
        current = pending.pop(0)
        origin, args = get_origin(current), get_args(current)
        if origin is dict and len(args) == 2:
            return args[1]
        if origin is list and args and isinstance(part, int):
            return args[0]
        if isinstance(current, type) and issubclass(current, BaseModel):
            for name, info in current.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation
            return None
        pending.extend(a for a in args if a is not type(None))
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds, through dict values, lists and unions."""
    pending = [annotation]
    while pending:
        current = pending.pop(0)
        if isinstance(current, type) and issubclass(current, BaseModel):
            return current
        args = get_args(current)
        if get_origin(current) is dict and len(args) == 2:
            pending.append(args[1])
        else:
            pending.extend(a for a in args if a is not type(None))
    return None


def _takes_mapping(cls: type[Op], param: str) -> bool:
    """Whether the op's parameter `param` is itself a mapping (so `op: {a: b}` may mean it)."""
    field_info = cls.model_fields.get(param) or next(
        (f for f in cls.model_fields.values() if f.alias == param), None
    )
    if field_info is None:
        return False
    pending = [field_info.annotation]
    while pending:
        annotation = pending.pop()
        origin = get_origin(annotation)
        if annotation is dict or origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
            return True
        pending.extend(a for a in get_args(annotation) if a is not type(None))
    return False


def parse_ops(raw_ops: Sequence[Mapping[str, Any]]) -> list[Op]:
    return [parse_op(raw, i) for i, raw in enumerate(raw_ops)]


def apply_ops(frame: pl.LazyFrame, ops: Sequence[Op], ctx: OpContext) -> pl.LazyFrame:
    for op in ops:
        frame = frame.pipe(_bound(op, ctx))
    return frame


def run_ops(frame: pl.LazyFrame, ops: Sequence[Op], ctx: OpContext) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Apply the chain and collect it once, together with every op's counters (Polars shares the
    common part of the plans), returning the result and {"<op>#<position>.<counter>": value}."""
    queries: list[pl.LazyFrame] = []
    labels: list[str] = []
    for position, op in enumerate(ops):
        counters = op.counters(frame.collect_schema())
        if counters:
            queries.append(frame.select(**counters))
            labels.append(f"{op.name}#{position + 1}")
        frame = frame.pipe(_bound(op, ctx))
    if not queries:
        return frame.collect(), {}
    out, *counted = pl.collect_all([frame, *queries])
    metrics = {
        f"{label}.{k}": v
        for label, c in zip(labels, counted, strict=True)
        for k, v in c.row(0, named=True).items()
    }
    return out, metrics


def plan_ops(frame: pl.LazyFrame, ops: Sequence[Op], ctx: OpContext) -> pl.LazyFrame:
    """The chain added to a lazy plan, nothing run (a streamed step: its counters are not computed)."""
    for op in ops:
        frame = frame.pipe(_bound(op, ctx))
    return frame


def chain_lineage(
    schema: pl.Schema, ops: Sequence[Op], ctx: OpContext, prefix: str = ""
) -> tuple[Lineage, pl.Schema]:
    """Lineage of a chain's output columns in terms of its input and other frames, and its schema.
    Each op that changes a column is named in its `via` as `<prefix>.<op>#<position>`."""
    current = identity(schema)
    for position, op in enumerate(ops):
        label = f"{prefix}.{op.name}#{position + 1}" if prefix else f"{op.name}#{position + 1}"
        try:
            output = op.output_schema(schema, ctx)
            current = compose(current, op.lineage(schema, ctx, output), label)
            schema = output
        except (pl.exceptions.PolarsError, KeyError, ValueError, TypeError) as exc:
            raise OpSchemaError(position, op.name, exc, list(schema)) from exc
    return current, schema


def _bound(op: Op, ctx: OpContext) -> Callable[[pl.LazyFrame], pl.LazyFrame]:
    return lambda lf: op.apply(lf, ctx)
