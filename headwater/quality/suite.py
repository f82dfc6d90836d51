"""Quality suites: Great Expectations' own ExpectationSuite JSON, with Headwater's meta on each
expectation under meta.headwater: name, dimension, severity, threshold (pass %), weight, action."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from headwater.errors import SpecError, SpecProblem
from headwater.quality.expectations import EXPECTATIONS, Expectation

Dimension = Literal["completeness", "accuracy", "consistency", "validity", "uniqueness", "timeliness"]
Severity = Literal["info", "warning", "error", "critical"]
Action = Literal["warn", "quarantine", "fail"]
SEVERITY_WEIGHT = {"info": 0.5, "warning": 1.0, "error": 2.0, "critical": 3.0}


class RuleMeta(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Rule name (default: derived)."
    )
    dimension: Dimension = "validity"
    severity: Severity = "warning"
    threshold: float = Field(100.0, ge=0.0, le=100.0, description="The rule passes at this pass % or more.")
    weight: float = Field(1.0, gt=0.0, le=100.0, description="Weight in the quality score.")
    action: Action = "warn"


@dataclass(frozen=True)
class Rule:
    name: str
    expectation: Expectation
    meta: RuleMeta
    raw: dict[str, Any]

    @property
    def type(self) -> str:
        return self.expectation.type


@dataclass(frozen=True)
class Suite:
    name: str
    rules: list[Rule]
    path: Path | None = None

    def rule(self, name: str) -> Rule:
        return next(r for r in self.rules if r.name == name)


def default_name(kind: str, kwargs: dict[str, Any]) -> str:
    short = kind.removeprefix("expect_").replace("column_values_to_", "").replace("column_", "")
    cols = [str(kwargs[k]) for k in ("column", "column_A", "column_B") if k in kwargs]
    cols += [str(c) for c in kwargs.get("column_list", [])]
    return "_".join([*cols, short])[:120]


def parse_suite(doc: Any, file: str) -> Suite:
    problems: list[SpecProblem] = []
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        raise SpecError(
            [
                SpecProblem(
                    file,
                    "(suite)",
                    "not an ExpectationSuite: needs `expectations: [...]`",
                    "write GX 1.x suite JSON: {name, expectations: [{type, kwargs, meta}]}",
                )
            ]
        )
    rules: list[Rule] = []
    for i, item in enumerate(doc["expectations"]):
        where = f"expectations[{i}]"
        kind = item.get("type") if isinstance(item, dict) else None
        cls = EXPECTATIONS.get(str(kind))
        if cls is None:
            problems.append(
                SpecProblem(
                    file,
                    f"{where}.type",
                    f"unknown or unsupported expectation {kind!r}",
                    f"use one of: {', '.join(sorted(EXPECTATIONS))}",
                )
            )
            continue
        kwargs = dict(item.get("kwargs") or {})
        meta_doc = (item.get("meta") or {}).get("headwater", {})
        try:
            meta = RuleMeta.model_validate(meta_doc)
            expectation = cls.model_validate(kwargs)
        except (ValidationError, ValueError) as exc:
            detail = (
                exc.errors(include_input=False)[0] if isinstance(exc, ValidationError) else {"msg": str(exc)}
            )
            loc = ".".join(str(p) for p in detail.get("loc", ()))
            name = meta_doc.get("name") if isinstance(meta_doc, dict) else None
            problems.append(
                SpecProblem(
                    file,
                    f"{where} ({name or kind})",
                    f"{loc + ': ' if loc else ''}{detail['msg'].removeprefix('Value error, ')}",
                    "see the expectation's GX documentation for its kwargs; meta.headwater "
                    "takes name, dimension, severity, threshold (0-100), weight, action",
                )
            )
            continue
        name = meta.name or default_name(cls.type, kwargs)
        if any(r.name == name for r in rules):
            problems.append(
                SpecProblem(
                    file,
                    f"{where}.meta.headwater.name",
                    f"rule name {name!r} is used twice",
                    "give each rule a unique meta.headwater.name",
                )
            )
            continue
        rules.append(Rule(name, expectation, meta, item))
    if problems:
        raise SpecError(problems)
    return Suite(str(doc.get("name") or Path(file).stem), rules, Path(file))


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(
            [SpecProblem(str(path), "(file)", f"cannot read: {exc.strerror}", "check the path")]
        ) from exc
    except json.JSONDecodeError as exc:
        raise SpecError(
            [
                SpecProblem(
                    str(path), f"line {exc.lineno}", f"not valid JSON: {exc.msg}", "fix the JSON syntax"
                )
            ]
        ) from exc
    return parse_suite(doc, str(path))
