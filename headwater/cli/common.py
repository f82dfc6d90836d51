"""What the command modules share: the table printer, argument types and help, the example folders,
and running a command as a watched worker."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from headwater.settings import Settings

Table = Callable[[Sequence[Sequence[Any]], Sequence[str]], str]

PIPELINES_HELP = "folder of pipeline specs (default: $HEADWATER_PIPELINES or ./pipelines)"

REPO = Path(__file__).resolve().parent.parent.parent
"""The folder that holds the packages (a repo checkout or an editable install)."""


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def examples_dir() -> Path:
    """The example pipelines shipped beside the package (repo checkout or editable install)."""
    return REPO / "pipelines"


def param_arg(text: str) -> tuple[str, str]:
    """`--param key=value`: the value stays text; the spec's declared type decides what it means."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value (e.g. --param feed=data/prices.csv)")
    return key.strip(), value


def params_text(values: dict[str, Any] | None) -> str:
    if not values:
        return "(none)"
    import json

    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in values.items())


def secs(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def mb(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def supervised_command(argv: Sequence[str], settings: Settings, what: str) -> int:
    """Run this very command as a watched worker (see headwater.supervise): its output here, its
    temporary Prefect API and anything it starts ended with it, whatever happens to it."""
    from datetime import datetime

    from headwater.cli.run import supervised

    settings.ensure_home()
    (settings.home / "logs").mkdir(exist_ok=True)
    log = settings.home / "logs" / f"{what}-{datetime.now():%Y%m%dT%H%M%S}.log"
    outcome = supervised([sys.executable, "-m", "headwater.cli", *argv], log, verbose=True)
    if outcome.returncode < 0:
        print(f"error: the {what} process {outcome.describe()} (log: {log})", file=sys.stderr)
        return 1
    return outcome.returncode
