"""Run parameters: a spec declares typed values a person sets per run (console form, CLI `--param`,
Prefect UI) and refers to them as `${params.NAME}`. Values arrive as text (CLI, forms) or JSON; they
are coerced to the declared type, merged over the defaults and checked against the choices."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from headwater.errors import SpecProblem

if TYPE_CHECKING:
    from headwater.spec.models import ParamSpec

ParamType = Literal["string", "integer", "number", "boolean", "date"]
PARAM_REF = re.compile(r"\$\{params\.([A-Za-z_][A-Za-z0-9_]*)\}")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
EXPECTED = {
    "string": "text",
    "integer": "a whole number such as 12",
    "number": "a number such as 12.5",
    "boolean": "true or false",
    "date": "a date as YYYY-MM-DD",
}


def coerce(kind: ParamType, value: Any) -> Any:
    """`value` as the declared type: text from a CLI or form ("12.5", "true", "2026-01-31") or JSON
    values (bool, int, float). Raises ValueError when it is not one."""
    if isinstance(value, str) and kind != "string":
        value = value.strip()
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER.match(value):
            return int(value)
    if kind == "number":
        number = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is not None and math.isfinite(number):
            return number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
    if kind == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str) and _ISO_DATE.match(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
    raise ValueError(f"expected {kind} ({EXPECTED[kind]}), got {value!r}")


def as_json(value: Any) -> Any:
    """A coerced value as JSON: dates as ISO text."""
    return value.isoformat() if isinstance(value, date) else value


def as_text(value: Any) -> str:
    """A coerced value written inside a longer string: true/false, 12.5, 2026-01-31."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(as_json(value))


def looks_secret(name: str) -> bool:
    from headwater.spec.loader import SECRET_KEY

    return bool(SECRET_KEY.search(name))


def placeholder(spec: ParamSpec, name: str) -> Any:
    """What stands in for a required parameter when a spec is validated without run values."""
    if spec.choices:
        return coerce(spec.type, spec.choices[0])
    stand_ins: dict[str, Any] = {
        "string": name,
        "integer": 1,
        "number": 1.0,
        "boolean": False,
        "date": date(2000, 1, 1),
    }
    return stand_ins[spec.type]


@dataclass
class ParamValues:
    """The values `${params.NAME}` takes in one load of a spec."""

    values: dict[str, Any]
    """Coerced values by name: given ones over defaults (and placeholders, see below)."""
    declared: list[str] = field(default_factory=list)
    placeholders: set[str] = field(default_factory=set)
    """Required parameters given no value, validated with a placeholder (validation only)."""
    placeholder_paths: list[tuple[str | int, ...]] = field(default_factory=list)
    """Where in the spec a placeholder was put: checks of those fields cannot judge them."""

    def resolved(self) -> dict[str, Any]:
        """The run's real values, JSON-ready (no placeholders)."""
        return {k: as_json(v) for k, v in self.values.items() if k not in self.placeholders}


def resolve_params(
    declared: Mapping[str, ParamSpec],
    given: Mapping[str, Any] | None,
    file: str,
    lines: Mapping[tuple[str | int, ...], int],
    *,
    may_be_unset: bool,
) -> tuple[ParamValues, list[SpecProblem], list[SpecProblem]]:
    """Given values over defaults, each coerced and checked. Returns the values, the problems and
    the notes (required parameters validated with a placeholder, when `may_be_unset`)."""
    given = dict(given or {})
    problems: list[SpecProblem] = []
    notes: list[SpecProblem] = []
    names = ", ".join(declared) or "(none: this spec declares no params)"

    def problem(name: str, message: str, hint: str) -> None:
        line = lines.get(("params", name), lines.get(("params",)))
        problems.append(SpecProblem(file, f"params.{name}", message, hint, line))

    for name in given:
        if name not in declared:
            problem(name, f"unknown parameter {name!r}", f"give only declared parameters: {names}")
    out = ParamValues({}, list(declared))
    for name, spec in declared.items():
        if name in given and given[name] is not None:
            raw = given[name]
            shown = "(hidden: the name looks secret)" if looks_secret(name) else repr(raw)
            try:
                value = coerce(spec.type, raw)
            except ValueError:
                problem(
                    name,
                    f"parameter {name} expects {spec.type}, got {shown}",
                    f"give {EXPECTED[spec.type]}",
                )
                continue
            choices = [coerce(spec.type, c) for c in spec.choices or []]
            if choices and value not in choices:
                problem(
                    name,
                    f"parameter {name}: {shown} is not one of the allowed values",
                    f"use one of: {', '.join(as_text(c) for c in choices)}",
                )
                continue
            out.values[name] = value
        elif spec.default is not None:
            out.values[name] = coerce(spec.type, spec.default)
        elif may_be_unset:
            out.values[name] = placeholder(spec, name)
            out.placeholders.add(name)
            notes.append(
                SpecProblem(
                    file,
                    f"params.{name}",
                    f"required parameter {name} has no default: validated with the placeholder "
                    f"{as_text(out.values[name])!r}; checks that need its value are skipped",
                    f"runs must give it: headwater run ... --param {name}=...",
                    lines.get(("params", name)),
                )
            )
        else:
            problem(
                name,
                f"required parameter {name} was not given",
                f"give it: headwater run ... --param {name}=... (or params={{'{name}': ...}} to the flow)",
            )
    return out, problems, notes
