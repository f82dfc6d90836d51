"""The `headwater` command: its parser (each command module adds its own subcommands) and `main`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from headwater.cli import (
    alerts,
    backfill,
    breakers,
    console,
    demo,
    deploy,
    health,
    profile,
    quarantine,
    run,
    runs,
    services,
    sla,
    stream,
    tokens,
    transforms,
    users,
    validate,
)
from headwater.cli.common import supervised_command
from headwater.errors import HeadwaterError, SpecError
from headwater.settings import Settings

DESCRIPTION = """\
Headwater runs the data pipelines you declare in YAML (pipelines/*.yaml): it extracts from files,
SQL databases and REST APIs, transforms with Polars, checks quality, loads SQLite or PostgreSQL in
one transaction per load, and records every run.

Start with:  headwater demo            (the examples, on embedded SQLite)
             headwater validate        (check your specs: each problem names file:line and the fix)
             headwater run NAME        (run one pipeline now)
             headwater runs            (what ran, and how it went)
"""

EPILOG = """\
Settings come from the environment: HEADWATER_HOME (default ~/.headwater), HEADWATER_DATABASE_URL,
HEADWATER_WAREHOUSE_URL, HEADWATER_PIPELINES (default ./pipelines), HEADWATER_ALERTS,
PREFECT_API_URL. Exit codes: 0 done, 1 a run or check failed, 2 refused before it started."""

COMMANDS = (
    validate,
    run,
    runs,
    quarantine,
    profile,
    alerts,
    transforms,
    users,
    tokens,
    console,
    demo,
    backfill,
    deploy,
    services,
    health,
    sla,
    breakers,
    stream,
)
"""The command modules, in the order `headwater --help` lists their subcommands."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headwater",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--verbose",
        dest="verbose_all",
        action="store_true",
        help="show tracebacks, and a run's full log instead of only its summary",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from headwater.supervise import is_worker

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    # a temporary Prefect server started for this process sends no usage telemetry
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    settings = Settings.from_env()
    args.verbose = bool(getattr(args, "verbose", False) or args.verbose_all)
    verbose = args.verbose
    supervise = args.command == "demo" or (args.command == "quarantine" and args.action == "replay")
    if supervise and not is_worker():
        return supervised_command(argv, settings, args.command)
    try:
        return int(args.func(args, settings))
    except SpecError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        print(exc, file=sys.stderr)
        return 2
    except HeadwaterError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 1
