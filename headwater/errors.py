"""Errors classed by what the caller should do with them.

Retries say yes to ``TransientError`` only; everything else fails fast. Each exception keeps its
inputs as attributes and builds its message from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class HeadwaterError(Exception):
    """Base of every error Headwater raises on purpose."""


class TransientError(HeadwaterError):
    """Worth retrying: network failures, lock timeouts, HTTP 429/5xx."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retryable(error: BaseException) -> bool:
    """The one retry predicate, by exception type (never by message): the domain's driver and
    Prefect's task retry condition both ask it."""
    return isinstance(error, TransientError)


class PermanentError(HeadwaterError):
    """Retrying cannot help: bad credentials, a missing table, a schema that cannot be reconciled."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message + (f" Fix: {hint}" if hint else ""))


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a spec: where it is, what is wrong, and how to fix it."""

    file: str
    field: str
    message: str
    hint: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        text = f"{where}: {self.field}: {self.message}"
        return text + (f" (fix: {self.hint})" if self.hint else "")


class SpecError(HeadwaterError):
    """An invalid pipeline spec or suite; raised at load time with every problem found."""

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class DataQualityError(HeadwaterError):
    """Data broke rules whose action is to fail; carries the failed rules and their counts."""

    def __init__(
        self,
        suite: str,
        failures: dict[str, int],
        checked: int,
        result: object = None,
        quick: Sequence[object] = (),
    ) -> None:
        self.suite = suite
        self.failures = failures
        self.checked = checked
        self.result = result
        """The full suite result, when a suite was evaluated (its checks are recorded too)."""
        self.quick = list(quick)
        """The step's quick rules as checked (recorded too)."""
        detail = ", ".join(f"{rule}: {n} of {checked} rows" for rule, n in failures.items())
        super().__init__(f"quality checks of {suite} failed ({detail})")


class NotificationError(HeadwaterError):
    """A channel refused a message."""


class UpstreamUnavailable(PermanentError):
    """A step could not run because a step it needs produced no data."""

    def __init__(self, step: str, missing: Sequence[str]) -> None:
        self.step = step
        self.missing = list(missing)
        super().__init__(
            f"step {step!r} cannot run: its input(s) {', '.join(self.missing)} failed and produced no data",
            hint="fix the failed upstream step, or mark this step critical: false to let the run go on",
        )
