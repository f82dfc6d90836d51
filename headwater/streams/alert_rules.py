"""An alert rule of a stream processor's `alert` step, as a spec declares it (evaluated by
headwater/streams/alerts.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from headwater.durations import parse_duration


class StreamAlertRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")
    severity: Literal["critical", "warning", "info"] = "warning"
    when: str = Field(description="SQL condition on a row of the step's input, e.g. 'heart_rate > 200'.")
    hold: float | None = Field(
        None,
        alias="for",
        description="Fire only once the condition has held this long in event time ('5m'); none: at once.",
    )

    @field_validator("when")
    @classmethod
    def _parses(cls, rule: str) -> str:
        from headwater.transform.expressions import parse_expr

        parse_expr(rule)  # the one parser of expressions: the same message as in a filter
        return rule

    @field_validator("hold", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)

    def columns(self) -> list[str]:
        from headwater.transform.expressions import parse_expr

        return list(dict.fromkeys(parse_expr(self.when).meta.root_names()))
