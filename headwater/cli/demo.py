"""`headwater demo`: the example pipelines, on the embedded SQLite defaults."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from headwater.cli.common import examples_dir, table
from headwater.settings import Settings

DEMO_PIPELINES = ("flights_daily", "carrier_monthly", "flights_clean", "vendor_prices", "claims_deidentified")
"""The examples the demo runs: those that need no outside service or account (not ga4_daily_sync, which
reads a Google Analytics property, nor webhook intake)."""


def demo_salt(settings: Settings) -> str | None:
    """The demo's HASH_SALT when none is set: a random one kept for this home (mode 600)."""
    if os.environ.get("HASH_SALT"):
        return None
    import secrets

    path = settings.home / "secrets" / "hash_salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    os.environ["HASH_SALT"] = path.read_text().strip()
    return str(path)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.connections import display_url
    from headwater.orchestration import orchestration

    pipelines = Path(os.environ.get("HEADWATER_PIPELINES") or examples_dir())
    names = list(DEMO_PIPELINES)
    print(f"Headwater demo: {', '.join(names)} from {pipelines}")
    salt_file = demo_salt(settings)
    if salt_file:
        print(f"  HASH_SALT is not set: the claims example uses the salt kept for this home in {salt_file}")
    print(
        f"  warehouse {display_url(settings.warehouse_url)}\n  store     {display_url(settings.database_url)}"
    )
    rows, failed = [], False
    for name in names:
        start = time.monotonic()
        result = orchestration().run_pipeline(name, pipelines, "manual")
        failed |= result["status"] == "failed"
        rows.append(
            (
                name,
                result["status"],
                result["records_processed"],
                result["records_loaded"],
                result["records_inserted"],
                result["records_updated"],
                f"{time.monotonic() - start:.1f}s",
            )
        )
        for warning in result.get("warnings") or []:
            print(f"  {name}: warning: {warning}")
        if result.get("failed_step"):
            print(f"  {name}: failed at {result['failed_step']}: {result['error_message']}")
    print()
    print(table(rows, ["pipeline", "status", "rows in", "rows out", "inserted", "updated", "duration"]))
    api = None if os.environ.get("HEADWATER_TEMPORARY_API") else os.environ.get("PREFECT_API_URL")
    ui = api.removesuffix("/api") if api else "http://127.0.0.1:4200 after `prefect server start`"
    warehouse = settings.warehouse_url.removeprefix("sqlite:///")
    print(f"""
The data:     {display_url(settings.warehouse_url)}
              tables carrier_daily, carrier_monthly, flights_clean, vendor_prices, claims_deid
Quarantine:   headwater quarantine list --pipeline flights_clean
              e.g. sqlite3 {warehouse} 'SELECT * FROM carrier_daily LIMIT 5'
Run history:  headwater runs      (one run: headwater runs --run <id>)
Console:      headwater console  (make console; http://127.0.0.1:8501)
Prefect UI:   {ui}""")
    return 1 if failed else 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the example pipelines on the embedded SQLite defaults")
    p.set_defaults(func=cmd_demo)
