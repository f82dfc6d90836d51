"""The op reference, generated from the registry (docs/transforms.md is this text)."""

from __future__ import annotations

import re
from typing import Any

from pydantic.fields import FieldInfo

from headwater.transform.registry import CATEGORIES, OP_REGISTRY, Op

HEADER = """\
# Transform ops

Generated from the op registry by `headwater transforms --markdown`; a test keeps this file equal to
the registry. Ops are used in a transform step's `ops:` list, one single-key mapping each. Expressions
are SQL expressions parsed by Polars, never `eval`. Lineage says how each output column is made:
`direct` (copied or renamed), `join`, `derived` (generated: constants, ids, flags, hashes),
`calculation` (from values of the same row) or `aggregation` (over many rows).
"""


def _type(field: FieldInfo) -> str:
    text = str(field.annotation).replace("typing.", "").replace("NoneType", "null")
    text = text.replace("<class '", "").replace("'>", "")
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", text)  # headwater.transform.ops.x.Aggregation -> Aggregation


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value: Any = field.get_default(call_default_factory=True)
    return f"`{value!r}`" if value not in (None, [], {}) else "—"


def op_markdown(cls: type[Op]) -> str:
    text = cls.description.replace("<", "&lt;")
    lines = [f"### `{cls.name}`", "", text, "", "```yaml", f"- {cls.example}", "```", ""]
    if cls.model_fields:
        lines += ["| parameter | type | default | meaning |", "|---|---|---|---|"]
        for name, field in cls.model_fields.items():
            key = field.alias or name
            short = " (shorthand)" if cls.shorthand == name else ""
            desc = (field.description or "").replace("|", "\\|").replace("<", "&lt;")
            kind = _type(field).replace("|", "\\|")
            lines.append(f"| `{key}`{short} | {kind} | {_default(field)} | {desc} |")
        lines.append("")
    return "\n".join(lines)


def markdown() -> str:
    parts = [HEADER]
    for category in CATEGORIES:
        ops = sorted((c for c in OP_REGISTRY.values() if c.category == category), key=lambda c: c.name)
        if ops:
            parts.append(f"## {category} ({len(ops)})\n")
            parts += [op_markdown(cls) for cls in ops]
    return "\n".join(parts).rstrip() + "\n"


def listing() -> list[tuple[str, str, str]]:
    """(name, category, description) of every op, by category then name."""
    order = {c: i for i, c in enumerate(CATEGORIES)}
    ops = sorted(OP_REGISTRY.values(), key=lambda c: (order.get(c.category, 99), c.name))
    return [(c.name, c.category, c.description) for c in ops]
