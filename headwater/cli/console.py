"""`headwater console`: serve the Streamlit operations console (console/streamlit_app.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from headwater.cli.common import REPO
from headwater.settings import Settings


def console_dir() -> Path:
    return REPO / "console"


def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.access.commands import ensure_first_admin
    from headwater.store import Store

    settings.ensure_home()
    store = Store(settings.database_url).migrate()
    try:
        created = ensure_first_admin(store.engine, settings.home)
    finally:
        store.dispose()
    if created:
        print(f"No console users yet: created user 'admin' (system_admin); its password is in {created}")
        print("  add people with: headwater users add NAME --role data_analyst|data_engineer|system_admin")
    app = console_dir() / "streamlit_app.py"
    print(
        f"Headwater console on http://{args.address}:{args.port}  (store {settings.database_url.split('://')[0]})"
    )
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        f"--server.port={args.port}",
        f"--server.address={args.address}",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=minimal",
        "--theme.base=light",
        "--theme.primaryColor=#0b6e99",
    ]
    from headwater.services import running_api_url

    if not os.environ.get("PREFECT_API_URL") and (url := running_api_url(settings)):
        os.environ["PREFECT_API_URL"] = url  # `headwater up` runs: run now and pause go through it
        print(f"  through the Prefect server `headwater up` runs: {url}")
    sys.stdout.flush()
    os.execv(sys.executable, command)
    return 0  # not reached


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("console", help="serve the Streamlit operations console")
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.set_defaults(func=cmd_console)
