"""A temporary Prefect API for a command that has no server to talk to (PREFECT_API_URL unset).

Prefect would start one inside the process that runs the flow; if that process dies abruptly the
server lives on, orphaned. Headwater starts it from the supervising `headwater` command instead,
as a child that the kernel ends when the command ends (PR_SET_PDEATHSIG), whatever ends it, and
hands its URL to the worker that runs the flows. Same server, same settings as Prefect's own
temporary server (its UI off)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from headwater.supervise import die_with_parent


@dataclass
class TemporaryApi:
    process: subprocess.Popen[bytes]
    url: str

    def stop(self, grace: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_temporary_api(log: Path | None = None, timeout: float = 120.0) -> TemporaryApi:
    """Start Prefect's API server on a free local port and wait until it answers."""
    import prefect
    from prefect.settings import get_current_settings

    port = _free_port()
    env = {
        **{k: v for k, v in get_current_settings().to_environment_variables(exclude_unset=True).items() if v},
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    from headwater.supervise import prepare_die_with_parent

    prepare_die_with_parent()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(Path(prefect.__file__).parent.parent),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],
        env={**os.environ, **env},
        stdout=out,
        stderr=out,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    api = TemporaryApi(process, f"http://127.0.0.1:{port}/api")
    deadline = time.monotonic() + timeout
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the temporary Prefect API exited with code {process.returncode} while starting"
                    + (f" (log: {log})" if log else "")
                )
            try:
                if client.get(f"{api.url}/health", timeout=2).status_code == 200:
                    return api
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    api.stop()
    raise RuntimeError(f"the temporary Prefect API did not answer within {timeout:.0f} s")
