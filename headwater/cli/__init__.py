"""The `headwater` command, one module per command group (headwater.cli.main builds the parser from
their `add_parsers`). Imports stay lazy: `validate` never loads Prefect, and the orchestrator is
reached only through headwater.orchestration."""

from headwater.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
