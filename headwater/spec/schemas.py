"""`headwater validate` follows column schemas through a pipeline where it can know them (file
sources), so an op naming an unknown column, or a key the data will not have, is a SpecError
naming the step, the op and its position, before anything runs."""

from __future__ import annotations

import polars as pl

from headwater.errors import SpecProblem
from headwater.spec.loader import LoadedSpec, field_path
from headwater.spec.models import ExtractStep, FileSource, LoadStep, TransformStep, ValidateStep


def schema_problems(loaded: LoadedSpec, order: list[str]) -> list[SpecProblem]:
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
                schemas[name] = (
                    file_schema(source, loaded.base_dir) if isinstance(source, FileSource) else None
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
        if isinstance(step, LoadStep):
            missing = [c for c in step.destination.primary_key if c not in primary]
            if missing:
                add(
                    ("steps", i, "destination", "primary_key"),
                    f"primary key column(s) {', '.join(missing)} are not in the data this step loads",
                    f"the columns here are: {', '.join(primary)}",
                )
    return problems
