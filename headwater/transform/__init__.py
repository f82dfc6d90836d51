"""Transforms: ops are `LazyFrame -> LazyFrame`, declared in a registry and composed with `.pipe`."""

from headwater.transform import ops as _ops  # noqa: F401  (registers every op)
from headwater.transform.registry import OP_REGISTRY, Op, OpContext, OpParseError, apply_ops, parse_ops

__all__ = ["OP_REGISTRY", "Op", "OpContext", "OpParseError", "apply_ops", "parse_ops"]
