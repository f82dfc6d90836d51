"""`headwater health`: the readiness the API's `/ready` answers, here (exit 0 ready, 1 not);
`headwater api`: serve the HTTP API (api/app.py) with uvicorn."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from headwater.cli.common import table
from headwater.settings import Settings


def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.services import running_api_url
    from headwater.views.health import as_json, check_all, readiness

    settings.ensure_home()  # the embedded SQLite files live there: a fresh home is not an outage
    checks = check_all(
        settings.database_url,
        settings.warehouse_url,
        settings.prefect_api_url or running_api_url(settings),
        settings.redis_url,
    )
    ok, failing = readiness(checks)
    if args.json:
        print(
            json.dumps({"status": "ready" if ok else "not_ready", "components": [as_json(c) for c in checks]})
        )
    else:
        rows = [
            (
                c.component,
                c.status,
                c.target,
                "" if c.latency_ms is None else f"{c.latency_ms:g} ms",
                c.detail,
            )
            for c in checks
        ]
        print(table(rows, ["component", "status", "target", "latency", "detail"]))
        degraded = [c for c in checks if c.status == "degraded"]
        print("ready" if ok else f"NOT READY: {', '.join(c.component for c in failing)}")
        for c in degraded:
            print(f"degraded: {c.component}: {c.detail}")
    return 0 if ok else 1


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    print(f"Headwater API on http://{args.host}:{args.port}  (docs: /docs)")
    sys.stdout.flush()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "api.app:create_app",
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--log-level",
        "warning",
    ]
    os.execv(sys.executable, command)
    return 0  # not reached


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("health", help="is everything Headwater needs answering? (exit 0 ready, 1 not)")
    p.add_argument("--json", action="store_true", help="the same answer as the API's /ready, as JSON")
    p.set_defaults(func=cmd_health)
    p = sub.add_parser("api", help="serve the HTTP API (/health, /ready; docs at /docs)")
    p.add_argument("--port", type=int, default=8600, help="port to serve on (default 8600)")
    p.add_argument("--address", dest="host", default="127.0.0.1", help="address (default 127.0.0.1)")
    p.set_defaults(func=cmd_api)
