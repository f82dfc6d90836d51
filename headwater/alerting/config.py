"""Channel and rule configuration (alerts/channels.yaml, alerts/rules.yaml), validated once at load:
unknown keys are errors, secrets come from ${ENV} and are never written into YAML."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from headwater.alerting.conditions import Condition
from headwater.errors import SpecError, SpecProblem
from headwater.spec.loader import field_path, interpolate, literal_secret_problems

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Severity = Literal["info", "warning", "critical"]
T = TypeVar("T", bound=BaseModel)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuietHours(_Model):
    """Hours in which a channel receives nothing; messages are held and sent when they end."""

    timezone: str = Field(description="IANA time zone the hours are read in, e.g. Europe/London")
    start: time = Field(description="local time the quiet hours begin")
    end: time = Field(description="local time they end (before `start`: they run past midnight)")
    days: list[Day] = Field(default=list(DAYS), description="days on which the quiet hours begin")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def covers(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.timezone))
        t, day = local.time(), DAYS[local.weekday()]
        if self.start <= self.end:
            return day in self.days and self.start <= t < self.end
        yesterday = DAYS[(local - timedelta(days=1)).weekday()]
        return (day in self.days and t >= self.start) or (yesterday in self.days and t < self.end)


class MaintenanceWindow(_Model):
    """A planned window in which a channel receives nothing (held, sent afterwards)."""

    start: datetime = Field(description="start, with a UTC offset")
    end: datetime = Field(description="end, with a UTC offset")
    reason: str = Field(default="", description="why, for the record")

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("maintenance start and end need a UTC offset, e.g. 2026-11-22T02:00:00+00:00")
        if self.end <= self.start:
            raise ValueError("maintenance end must be after its start")
        return self

    def covers(self, now: datetime) -> bool:
        return self.start <= now < self.end


class Channel(_Model):
    """One destination: an apprise URL (mailto://, mailtos://, slack://, json://, pagerduty://, ...)."""

    url: str = Field(min_length=3, description="apprise URL; secrets as ${ENV} references", repr=False)
    description: str = Field(default="", description="who reads it")
    quiet_hours: QuietHours | None = Field(default=None, description="hours in which messages are held")
    maintenance: list[MaintenanceWindow] = Field(default=[], description="windows in which messages are held")

    @field_validator("url")
    @classmethod
    def _has_scheme(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("a channel URL needs a scheme, e.g. mailtos://, slack://, json://")
        return value

    def held_reason(self, now: datetime) -> str | None:
        """Why a message sent now would be held, or None when it can go out."""
        for window in self.maintenance:
            if window.covers(now):
                return "maintenance" + (f": {window.reason}" if window.reason else "")
        if self.quiet_hours and self.quiet_hours.covers(now):
            return "quiet hours"
        return None


class ChannelBreaker(_Model):
    """A circuit breaker per channel: a channel whose messages keep failing is not tried for a while
    (its messages are recorded `skipped`), then one message probes it."""

    enabled: bool = Field(default=True, description="false: every message is tried")
    failures: int = Field(
        default=3, ge=1, le=100, description="failed messages within `window_minutes` that open it"
    )
    window_minutes: float = Field(default=60, gt=0, description="how far back failed messages count")
    open_minutes: float = Field(default=15, gt=0, description="how long no message is tried")


class DeliveryPolicy(_Model):
    attempts: int = Field(default=3, ge=1, le=10, description="tries per message before it is failed")
    backoff_seconds: float = Field(default=2.0, ge=0, description="wait before the 2nd try; doubles after")
    breaker: ChannelBreaker = Field(default=ChannelBreaker(), description="each channel's circuit breaker")


class Channels(_Model):
    """alerts/channels.yaml"""

    channels: dict[str, Channel] = Field(description="channels by name")
    delivery: DeliveryPolicy = Field(default=DeliveryPolicy(), description="retries of a refused message")


class Escalation(_Model):
    """Unacknowledged after `after_minutes`: the next level's channels get it, again every
    `after_minutes` (the last level repeats)."""

    after_minutes: float = Field(gt=0, description="minutes without acknowledgement before escalating")
    levels: list[list[str]] = Field(min_length=1, description="channel names per escalation level")


class AlertRule(_Model):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", description="unique rule name")
    pipeline: str | None = Field(default=None, description="pipeline name or glob; omitted: every pipeline")
    severity: Severity = Field(default="warning", description="info, warning or critical")
    when: Condition = Field(description="the condition; combine with all: [...] / any: [...]")
    channels: list[str] | None = Field(default=None, description="overrides the severity's channels")
    escalation: Escalation | None = Field(default=None, description="escalation when not acknowledged")
    enabled: bool = Field(default=True, description="false: the rule is kept but not evaluated")


class AlertRules(_Model):
    """alerts/rules.yaml"""

    severity_channels: dict[Severity, list[str]] = Field(default={}, description="channels per severity")
    rules: list[AlertRule] = Field(description="alert rules")

    @model_validator(mode="after")
    def _unique(self) -> AlertRules:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique: {', '.join(dupes)}")
        return self

    def channels_for(self, rule: AlertRule) -> list[str]:
        return (
            list(rule.channels)
            if rule.channels is not None
            else list(self.severity_channels.get(rule.severity, []))
        )

    def reference_problems(self, channels: Channels, file: str = "rules.yaml") -> list[SpecProblem]:
        known = set(channels.channels)
        problems = []
        for sev, names in self.severity_channels.items():
            problems += [
                SpecProblem(file, f"severity_channels.{sev}", f"unknown channel {n!r}", _hint(known))
                for n in names
                if n not in known
            ]
        for i, rule in enumerate(self.rules):
            used = list(rule.channels or []) + [
                n for lvl in (rule.escalation.levels if rule.escalation else []) for n in lvl
            ]
            problems += [
                SpecProblem(file, f"rules.{i}", f"rule {rule.name} names unknown channel {n!r}", _hint(known))
                for n in used
                if n not in known
            ]
        return problems


def _hint(known: set[str]) -> str:
    return f"use one of: {', '.join(sorted(known))}" if known else "define it in channels.yaml"


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SpecError([SpecProblem(str(path), "", f"not valid YAML: {exc}")]) from exc


def _validate(
    model: type[T],
    data: Any,
    file: str,
    env: Mapping[str, str],
    unset_secrets: list[SpecProblem] | None = None,
) -> T:
    problems = literal_secret_problems(data, file, {})
    data = interpolate(data, env, file, {}, problems, unset_secrets=unset_secrets)
    if problems:
        raise SpecError(problems)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(
            [
                SpecProblem(
                    file,
                    field_path(err["loc"]),
                    f"unknown key {err['loc'][-1]!r}"
                    if err["type"] == "extra_forbidden"
                    else err["msg"].removeprefix("Value error, "),
                )
                for err in exc.errors(include_input=False, include_url=False)
            ]
        ) from exc


def load_channels(path: str | Path, env: Mapping[str, str] | None = None) -> Channels:
    """Parse channels.yaml, replacing ${ENV} references (secrets) from `env` (default: os.environ)."""
    p = Path(path)
    return _validate(Channels, _read(p), str(p), os.environ if env is None else env)


def load_rules(
    path: str | Path, channels: Channels | None = None, env: Mapping[str, str] | None = None
) -> AlertRules:
    """Parse rules.yaml; with `channels`, every channel a rule names must exist."""
    p = Path(path)
    rules = _validate(AlertRules, _read(p), str(p), os.environ if env is None else env)
    if channels is not None and (problems := rules.reference_problems(channels, str(p))):
        raise SpecError(problems)
    return rules


def load_folder(folder: str | Path) -> tuple[Channels, AlertRules]:
    """An alerts folder (HEADWATER_ALERTS): its channels.yaml, and its rules.yaml checked against them."""
    channels = load_channels(Path(folder) / "channels.yaml")
    return channels, load_rules(Path(folder) / "rules.yaml", channels)


def check_alerts(
    folder: str | Path, env: Mapping[str, str] | None = None
) -> tuple[list[SpecProblem], list[str]]:
    """(problems, notes) of channels.yaml and rules.yaml in `folder`, for `headwater validate`:
    channel secrets not set here are noted, not refused (runs that send need them)."""
    env = os.environ if env is None else env
    folder = Path(folder)
    unset: list[SpecProblem] = []
    try:
        channels = _validate(
            Channels, _read(folder / "channels.yaml"), str(folder / "channels.yaml"), env, unset
        )
        rules = _validate(AlertRules, _read(folder / "rules.yaml"), str(folder / "rules.yaml"), env, unset)
    except SpecError as exc:
        return exc.problems, []
    except OSError as exc:
        return [
            SpecProblem(
                str(folder),
                "(file)",
                f"cannot read: {exc}",
                "HEADWATER_ALERTS names a folder with channels.yaml and rules.yaml",
            )
        ], []
    return rules.reference_problems(channels, str(folder / "rules.yaml")), [str(n) for n in unset]
