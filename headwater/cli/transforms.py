"""`headwater transforms`: the transform ops, listed or as the full reference."""

from __future__ import annotations

import argparse
from typing import Any

from headwater.cli.common import table
from headwater.settings import Settings


def cmd_transforms(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.transform import docs

    if args.markdown:
        print(docs.markdown(), end="")
        return 0
    rows = docs.listing()
    print(table(rows, ["op", "category", "description"]))
    print(f"\n{len(rows)} ops; parameters and examples: docs/transforms.md (headwater transforms --markdown)")
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("transforms", help="list the transform ops")
    p.add_argument("--markdown", action="store_true", help="print the full reference (docs/transforms.md)")
    p.set_defaults(func=cmd_transforms)
