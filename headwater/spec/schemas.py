"""`headwater validate` follows column schemas through a pipeline where it can know them (file
sources), so an op naming an unknown column, or a key the data will not have, is a SpecError
naming the step, the op and its position, before anything runs."""

from __future__ import annotations

from typing import Any

import polars as pl

from headwater.errors import PermanentError, SpecProblem
from headwater.spec.loader import LoadedSpec, field_path
from headwater.spec.models import ExtractStep, FileSource, Ga4Source, LoadStep, TransformStep, ValidateStep


def schema_problems(loaded: LoadedSpec, order: list[str], *, validating: bool = False) -> list[SpecProblem]:
    """Problems found by following the columns through the steps. `validating`: also a source file
    that cannot be read, and an op or rule whose column types do not fit (run on an empty frame of
    the columns, which is where Polars checks types)."""
    from headwater.extract.files import file_schema
    from headwater.transform import OpContext, parse_ops
    from headwater.transform.expressions import parse_expr
    from headwater.transform.registry import OpSchemaError, chain_lineage

    spec, file = loaded.spec, str(loaded.path)
    index = {s.name: i for i, s in enumerate(spec.steps)}
    schemas: dict[str, pl.Schema | None] = {}
    problems: list[SpecProblem] = []

    def add(loc: tuple[str | int, ...], message: str, hint: str) -> None:
        problems.append(SpecProblem(file, field_path(loc), message, hint, loaded.line(*loc)))

    for name in order:
        step, i = spec.step(name), index[name]
        inputs = [schemas.get(dep) for dep in step.depends_on]
        primary = inputs[0] if inputs else None
        if isinstance(step, ExtractStep):
            source = spec.sources[step.source]
            try:
                if isinstance(source, FileSource):
                    schemas[name] = file_schema(source, loaded.base_dir)
                elif isinstance(source, Ga4Source):  # the report's columns (metrics typed as numbers)
                    from headwater.extract.ga4 import report_schema

                    schemas[name] = report_schema(source)
                else:
                    schemas[name] = None
            except PermanentError as exc:  # a run fails at this step with the same message
                schemas[name] = None
                if validating:
                    add(
                        ("sources", step.source, "path"),
                        str(exc).split(" Fix: ")[0],
                        exc.hint or "fix the file",
                    )
            except Exception:  # an unreadable file fails the run with its own precise error
                schemas[name] = None
            continue
        if primary is None:
            schemas[name] = None
            continue
        if isinstance(step, TransformStep):
            if any(s is None for s in inputs) or "${" in repr(step.ops):  # a secret not set here
                schemas[name] = None
                continue
            ctx = OpContext(
                {dep: pl.LazyFrame(schema=s) for dep, s in zip(step.depends_on, inputs, strict=True)}
            )
            try:
                _, schemas[name] = chain_lineage(primary, parse_ops(step.ops), ctx)
            except OpSchemaError as exc:
                op = next(iter(step.ops[exc.position]))
                add(("steps", i, "ops", exc.position, op), f"step {name}: {exc}", exc.hint)
                schemas[name] = None
                continue
            if validating and (wrong := type_problem(primary, parse_ops(step.ops), ctx)):
                position, message, columns = wrong
                op = next(iter(step.ops[position]))
                add(
                    ("steps", i, "ops", position, op),
                    f"step {name}: op #{position + 1} ({op}): {message}",
                    f"cast the column to the type the op needs first (the cast op); the columns it gets "
                    f"are: {columns}",
                )
            continue
        schemas[name] = primary
        if isinstance(step, ValidateStep) and step.suite:
            from headwater.quality.suite import load_suite

            for suite_rule in load_suite(loaded.base_dir / step.suite).rules:
                missing = [c for c in suite_rule.expectation.columns() if c not in primary]
                if missing:
                    add(
                        ("steps", i, "suite"),
                        f"rule {suite_rule.name} of {step.suite} checks unknown column(s) "
                        f"{', '.join(missing)}",
                        f"the columns here are: {', '.join(primary)}",
                    )
        if isinstance(step, ValidateStep):
            for j, rule in enumerate(step.expect):
                missing = [c for c in parse_expr(rule.rule).meta.root_names() if c not in primary]
                if missing:
                    add(
                        ("steps", i, "expect", j, "rule"),
                        f"rule {rule.name} uses unknown column(s) {', '.join(missing)}",
                        f"the columns here are: {', '.join(primary)}",
                    )
                elif validating and (
                    refused := _polars_refusal(pl.LazyFrame(schema=primary).select(parse_expr(rule.rule)))
                ):
                    add(
                        ("steps", i, "expect", j, "rule"),
                        f"rule {rule.name}: {refused}",
                        f"cast the column in a transform step first; the columns here are: {_typed(primary)}",
                    )
        if isinstance(step, LoadStep):
            missing = [c for c in step.destination.primary_key if c not in primary]
            if missing:
                add(
                    ("steps", i, "destination", "primary_key"),
                    f"primary key column(s) {', '.join(missing)} are not in the data this step loads",
                    f"the columns here are: {', '.join(primary)}",
                )
    return problems


_TYPE_ERRORS = (
    pl.exceptions.ComputeError,
    pl.exceptions.InvalidOperationError,
    pl.exceptions.SchemaError,
)


def _polars_refusal(frame: pl.LazyFrame) -> str | None:
    """Polars' type error for a plan, found by running it on no rows; None when it runs."""
    try:
        frame.collect()
    except _TYPE_ERRORS as exc:
        return str(exc).strip().splitlines()[0]
    return None


def _typed(schema: pl.Schema) -> str:
    return ", ".join(f"{c} ({t})" for c, t in schema.items())


def type_problem(schema: pl.Schema, ops: list[Any], ctx: Any) -> tuple[int, str, str] | None:
    """The first op whose column types do not fit (position, Polars' reason, the typed columns it
    gets), by running each op on an empty frame of its input schema."""
    from headwater.transform import OpContext

    empty = OpContext({k: pl.LazyFrame(schema=v.collect_schema()) for k, v in ctx.frames.items()})
    for position, op in enumerate(ops):
        wrong = _polars_refusal(op.apply(pl.LazyFrame(schema=schema), empty))
        if wrong:
            return position, wrong, _typed(schema)
        schema = op.output_schema(schema, ctx)
    return None
