"""A run's 0-100 quality score, and how it was made.

Every rule checked in a run (suite rules and a validate step's quick `expect` rules and `min_rows`)
counts with the weight `weight x severity factor` (info 0.5, warning 1, error 2, critical 3): the
score is the weighted mean of the rules' pass rates. So a run where every rule passed its threshold
can still score 96.2: a rule that lets 5% of rows fail (threshold 95) passes with a pass rate of
95.3, and pulls the score down by its share of the weight. `explain` gives each rule's part."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from headwater.quality.suite import SEVERITY_WEIGHT

QUICK_SUITE = "expect"
"""The suite name quick `expect` rules and `min_rows` are recorded under."""


@dataclass(frozen=True)
class RulePart:
    """One rule's part in a run's score."""

    rule: str
    suite: str
    severity: str
    weight: float
    """The rule's own weight (meta.headwater.weight; 1 for quick rules)."""
    effective_weight: float
    """weight x severity factor: what the rule counts for in the mean."""
    pass_rate: float
    """Percent of the checked records that pass (table-level rules: 100 or 0)."""
    passed: bool
    share: float
    """effective_weight / the sum of all effective weights, in %."""
    contribution: float
    """Points of the score this rule gives: share x pass_rate / 100."""
    lost: float
    """Points this rule costs the score: share - contribution."""


@dataclass(frozen=True)
class ScoreExplanation:
    score: float | None
    parts: list[RulePart]

    def summary(self) -> str:
        if self.score is None:
            return "no quality rules were checked in this run"
        losing = sorted((p for p in self.parts if p.lost >= 0.005), key=lambda p: -p.lost)
        if not losing:
            return f"score {self.score:g}: every rule passed all the records it checked"
        worst = ", ".join(f"{p.rule} -{p.lost:.2f}" for p in losing[:3])
        return f"score {self.score:g} = 100 minus the points rules lost: {worst}"


def explain(checks: Sequence[Mapping[str, Any]]) -> ScoreExplanation:
    """The score of a run from its recorded checks (data_quality_checks rows), rule by rule."""
    weights = [_weight(c) * SEVERITY_WEIGHT.get(c["severity"], 1.0) for c in checks]
    total = sum(weights)
    if not checks or total <= 0:
        return ScoreExplanation(None, [])
    parts = []
    for check, effective in zip(checks, weights, strict=True):
        share = 100.0 * effective / total
        contribution = share * float(check["pass_rate"]) / 100.0
        parts.append(
            RulePart(
                rule=check["rule_name"],
                suite=check["suite"],
                severity=check["severity"],
                weight=_weight(check),
                effective_weight=effective,
                pass_rate=float(check["pass_rate"]),
                passed=bool(check["success"]),
                share=share,
                contribution=contribution,
                lost=share - contribution,
            )
        )
    score = round(sum(p.contribution for p in parts), 2)
    return ScoreExplanation(score, parts)


def _weight(check: Mapping[str, Any]) -> float:
    """The rule's weight as recorded (checks recorded before weights were kept count 1)."""
    weight = check.get("weight")
    return 1.0 if weight is None else float(weight)
