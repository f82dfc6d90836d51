"""`headwater profile`: column statistics of a source, a file or a table, and a draft quality suite."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from headwater.errors import HeadwaterError
from headwater.settings import Settings


def cmd_profile(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.quality.profile import draft_suite, profile, render_profile, write_draft_suite

    name, frame = _profile_target(args.target, settings)
    profiles = profile(frame)
    print(render_profile(profiles))
    if args.suite:
        doc = draft_suite(name, frame, profiles)
        write_draft_suite(Path(args.suite), doc)
        print(f"\ndraft suite with {len(doc['expectations'])} rule(s) written to {args.suite}")
    return 0


def _profile_target(target: str, settings: Settings) -> tuple[str, Any]:
    """`pipeline:source` (a source of a spec), a file path, or a warehouse table."""
    import polars as pl

    from headwater.connections import Connections
    from headwater.extract import extract_source
    from headwater.spec.loader import find_pipeline

    if ":" in target and not Path(target).exists():
        pipeline, source = target.split(":", 1)
        loaded = find_pipeline(settings.pipelines_dir, pipeline)
        if source not in loaded.spec.sources:
            raise HeadwaterError(
                f"pipeline {pipeline} has no source {source!r} (it has: {', '.join(loaded.spec.sources)})"
            )
        from headwater.store import Store

        store = Store(settings.database_url).migrate()  # a webhook source's events (its first batch)
        try:
            result = extract_source(
                source,
                loaded.spec.sources[source],
                base_dir=loaded.base_dir,
                connections=Connections(settings.warehouse_url),
                warehouse=loaded.spec.warehouse,
                events=store.engine,
            )
        finally:
            store.dispose()
        return source, result.frame
    path = Path(target)
    if path.exists():
        from headwater.extract.files import read_files
        from headwater.spec.models import FileSource

        return path.stem, read_files(path.stem, FileSource(kind="file", path=str(path.resolve())), Path.cwd())
    import sqlalchemy as sa

    engine = sa.create_engine(settings.warehouse_url)
    try:
        if not sa.inspect(engine).has_table(target):
            raise HeadwaterError(f"{target!r} is not a pipeline:source, a file, or a table in the warehouse")
        return target, pl.read_database(
            sa.select(
                sa.table(target, *[sa.column(c["name"]) for c in sa.inspect(engine).get_columns(target)])
            ),
            engine,
        )
    finally:
        engine.dispose()


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("profile", help="column statistics of a source, file or table; draft a suite")
    p.add_argument("target", help="pipeline:source, a data file, or a warehouse table")
    p.add_argument("--suite", help="write a draft quality suite (GX JSON) to this path")
    p.set_defaults(func=cmd_profile)
