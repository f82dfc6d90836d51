"""`headwater up`, `down`, `status` (see headwater.services)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from headwater.cli.common import PIPELINES_HELP, table
from headwater.settings import Settings


def _print_state(state: dict[str, Any]) -> None:
    print(f"Prefect API  {state.get('api_url')}" + ("  (external)" if state.get("external_api") else ""))
    if state.get("ui_url"):
        print(f"Prefect UI   {state['ui_url']}")
    if state.get("console_url"):
        print(f"console      {state['console_url']}")
    if state.get("http_api_url"):
        print(f"HTTP API     {state['http_api_url']}  (docs: /docs)")
    if state.get("streams"):
        print(f"streams      {state['streams']}")
    rows = [
        (c["name"], c["pid"], "alive" if c.get("alive", True) else "DEAD", c["log"])
        for c in state["children"]
    ]
    print(table([("supervisor", state["supervisor_pid"], "alive", ""), *rows], ["process", "pid", "", "log"]))


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.services import UpConfig, read_state, up

    if read_state(settings) is not None:
        print(f"already up for {settings.home}:")
    else:
        if os.environ.get("PREFECT_API_URL"):
            print(f"starting Headwater's workers for {settings.home} on {os.environ['PREFECT_API_URL']}")
        else:
            print(
                f"starting Headwater for {settings.home} (a first start sets up Prefect's database: ~1 min)"
            )
    state = up(settings, UpConfig.from_args(args))
    _print_state(state)
    if state.get("deploy_exit") == 2:
        print(f"some specs were not deployed: see {settings.home / 'logs' / 'deploy.log'}")
    print("stop it all with: headwater down")
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.services import down

    pids = down(settings)
    if not pids:
        print(f"nothing is up for {settings.home}")
        return 0
    print(f"stopped {len(pids)} processes: {', '.join(str(p) for p in pids)}")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from headwater.services import status

    state = status(settings)
    if not state["up"]:
        print(f"down: nothing runs for {settings.home} (start with: headwater up)")
        return 3
    _print_state(state)
    print(f"API healthy: {'yes' if state.get('api_healthy') else 'NO ' + state.get('api_error', '')}")
    if state.get("deployments") is not None:
        print(
            table(
                [(name, "paused" if paused else "active") for name, paused in state["deployments"]],
                ["deployment", "schedule"],
            )
        )
    if state.get("workers") is not None:
        print(table(state["workers"], ["pool", "worker", "status"]))
    dead = [c["name"] for c in state["children"] if not c["alive"]]
    return 1 if dead or not state.get("api_healthy") else 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("up", help="start Headwater always-on: Prefect server, deployments, workers, console")
    p.add_argument("--workers", type=int, default=2, help="process workers per work pool (default 2)")
    p.add_argument(
        "--port", type=int, default=4200, help="the Prefect server's port (default 4200, else a free one)"
    )
    p.add_argument(
        "--console-port", type=int, default=8501, help="the console's port (default 8501, else a free one)"
    )
    p.add_argument("--no-console", action="store_true", help="do not serve the console")
    p.add_argument(
        "--api-port", type=int, default=8600, help="the HTTP API's port (default 8600, else a free one)"
    )
    p.add_argument("--no-api", action="store_true", help="do not serve the HTTP API")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="where the Prefect server listens (default 127.0.0.1; 0.0.0.0 for workers on other hosts)",
    )
    p.add_argument("--pipelines", help=PIPELINES_HELP)
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="stop everything `headwater up` started")
    p.set_defaults(func=cmd_down)
    p = sub.add_parser("status", help="what `headwater up` runs, and whether it is healthy")
    p.set_defaults(func=cmd_status)
