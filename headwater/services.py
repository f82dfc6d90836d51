"""`headwater up` / `down` / `status`: Headwater always on, on one machine. A supervisor process runs
a Prefect server (its database under HEADWATER_HOME/prefect, or HEADWATER_PREFECT_DATABASE_URL), every
spec deployed to it, N process workers per work pool the specs name, and the console; it restarts a
child that dies and, when told to stop, ends everything it started (what those started too: the
flow-run processes of the workers). Its state (pids, URLs) is HEADWATER_HOME/run/up.json, which `down`
and `status` read, and which `headwater run`, the demo and the console use to find the server.

With PREFECT_API_URL set to an existing server, `up` starts no server: it deploys and starts workers."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import psutil

from headwater.errors import PermanentError
from headwater.settings import Settings
from headwater.store import Store
from headwater.supervise import FORWARDED, TOKEN_ENV, WorkerOutcome, set_subreaper

if TYPE_CHECKING:
    from headwater.streams.keeper import StreamKeeper

log = logging.getLogger(__name__)
STATE = "up.json"


def state_path(settings: Settings) -> Path:
    return settings.home / "run" / STATE


def read_state(settings: Settings) -> dict[str, Any] | None:
    """The supervisor's state, or None when no supervisor of this home is alive."""
    path = state_path(settings)
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not _alive(state.get("supervisor_pid"), state.get("supervisor_started")):
        return None
    return state


def _alive(pid: int | None, started: float | None = None) -> bool:
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.Error:
        return False


def running_api_url(settings: Settings) -> str | None:
    """The Prefect API `headwater up` serves for this home, when it is up and ready."""
    state = read_state(settings)
    if not state or not state.get("ready"):
        return None
    url = state.get("api_url")
    return str(url) if url else None


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise PermanentError("no free port", hint="free a port, or pass --port")


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self, token: str) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            env={**self.env, TOKEN_ENV: token},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,
        )
        out.close()

    def describe(self) -> dict[str, Any]:
        pid = self.proc.pid if self.proc else None
        started = psutil.Process(pid).create_time() if pid and _alive(pid) else None
        return {"name": self.name, "pid": pid, "started": started, "log": str(self.log), "argv": self.argv}


@dataclass
class UpConfig:
    workers: int = 2
    console: bool = True
    port: int = 4200
    console_port: int = 8501
    api: bool = True
    api_port: int = 8600
    pipelines_dir: Path | None = None
    host: str = "127.0.0.1"
    """Where the Prefect server listens: 0.0.0.0 lets workers on other hosts reach it."""

    @classmethod
    def from_args(cls, args: Any) -> UpConfig:
        """From `headwater up`'s options (the supervisor's own command line has the same)."""
        return cls(
            workers=args.workers,
            console=not args.no_console,
            port=args.port,
            console_port=args.console_port,
            api=not args.no_api,
            api_port=args.api_port,
            pipelines_dir=Path(args.pipelines).resolve() if args.pipelines else None,
            host=args.host,
        )


def _wait_healthy(url: str, proc: subprocess.Popen[bytes] | None, timeout: float, log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise PermanentError(
                    f"the Prefect server exited with code {proc.returncode} while starting",
                    hint=f"see {log_path}",
                )
            try:
                if client.get(f"{url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
    raise PermanentError(
        f"the Prefect API at {url} did not answer within {timeout:.0f} s", hint=f"see {log_path}"
    )


class Supervisor:
    """Runs in the process `headwater up` leaves behind (python -m headwater.services)."""

    def __init__(self, settings: Settings, config: UpConfig) -> None:
        self.settings = settings
        self.config = config
        self.token = uuid.uuid4().hex
        self.logs = settings.home / "logs"
        self.children: list[Child] = []
        self.stopping = False
        self.state: dict[str, Any] = {}
        self.store: Store | None = None
        self.keeper: StreamKeeper | None = None

    def _write_state(self, **extra: Any) -> None:
        me = psutil.Process()
        self.state.update(
            supervisor_pid=me.pid,
            supervisor_started=me.create_time(),
            children=[c.describe() for c in self.children],
            **extra,
        )
        path = state_path(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2))
        tmp.replace(path)

    def _base_env(self, api_url: str) -> dict[str, str]:
        pipelines = self.config.pipelines_dir or self.settings.pipelines_dir
        return {
            **os.environ,
            "PREFECT_API_URL": api_url,
            "HEADWATER_HOME": str(self.settings.home),
            "HEADWATER_PIPELINES": str(pipelines),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = Child(name, argv, env, self.logs / f"{name}.log")
        child.start(self.token)
        self.children.append(child)
        return child

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.settings.database_url).migrate()  # the sweep reads it from the start
        set_subreaper(True)  # what the children leave behind (flow-run processes) is ours to end
        api_url = os.environ.get("PREFECT_API_URL")
        self.state = {
            "started_at": datetime.now(UTC).isoformat(),
            "ready": False,
            "external_api": bool(api_url),
        }
        if not api_url:
            port = _free_port(self.config.port)
            prefect_home = self.settings.home / "prefect"
            prefect_home.mkdir(parents=True, exist_ok=True)
            env = {
                **os.environ,
                "PREFECT_HOME": str(prefect_home),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            }
            database = os.environ.get("HEADWATER_PREFECT_DATABASE_URL")
            if database:
                env["PREFECT_API_DATABASE_CONNECTION_URL"] = database
            api_url = f"http://127.0.0.1:{port}/api"
            server = self._spawn(
                "prefect-server",
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    self.config.host,
                    "--port",
                    str(port),
                ],
                env,
            )
            self._write_state(api_url=api_url, phase="starting the Prefect server")
            _wait_healthy(api_url, server.proc, 180.0, server.log)
        self._write_state(api_url=api_url, phase="deploying")
        env = self._base_env(api_url)
        deploy = subprocess.run(
            [sys.executable, "-m", "headwater.cli", "deploy"],
            env=env,
            stdout=(self.logs / "deploy.log").open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if deploy.returncode not in (0, 2):  # 2: some specs did not load; the rest are deployed
            raise PermanentError("headwater deploy failed", hint=f"see {self.logs / 'deploy.log'}")
        for pool in self._pools():
            for i in range(1, self.config.workers + 1):
                self._spawn(
                    f"worker-{pool}-{i}",
                    [
                        sys.executable,
                        "-m",
                        "prefect",
                        "worker",
                        "start",
                        "--pool",
                        pool,
                        "--type",
                        "process",
                        "--name",
                        f"{socket.gethostname()}-{self._tag()}-{pool}-{i}",
                    ],
                    {
                        **env,
                        "PREFECT_WORKER_QUERY_SECONDS": os.environ.get("PREFECT_WORKER_QUERY_SECONDS", "5"),
                    },
                )
        runner = self.settings.home / "run" / "runner.sock"
        self._spawn("runner", [sys.executable, "-m", "flows.runner", "--socket", str(runner)], env)
        deadline = time.monotonic() + 60
        while not runner.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        console_url = None
        if self.config.console:
            port = _free_port(self.config.console_port)
            self._spawn(
                "console", [sys.executable, "-m", "headwater.cli", "console", "--port", str(port)], env
            )
            console_url = f"http://127.0.0.1:{port}"
        http_api_url = None
        if self.config.api:
            port = _free_port(self.config.api_port)
            self._spawn("api", [sys.executable, "-m", "headwater.cli", "api", "--port", str(port)], env)
            http_api_url = f"http://127.0.0.1:{port}"
        streams = self._keep_streams(api_url)
        self._write_state(
            api_url=api_url,
            streams=streams,
            console_url=console_url,
            http_api_url=http_api_url,
            ui_url=None if self.state["external_api"] else api_url.removesuffix("/api"),
            ready=True,
            phase="up",
            runner_socket=str(runner) if runner.exists() else None,
            deploy_exit=deploy.returncode,
        )

    def _keep_streams(self, api_url: str) -> str | None:
        """Keep the streaming specs' processors running (headwater/streams/keeper.py), those with a
        Redis to read; the line `up` and `status` print about them."""
        from headwater.streams.keeper import StreamKeeper, kept_streams

        streams = kept_streams(self.config.pipelines_dir or self.settings.pipelines_dir, self.settings)
        if streams.skipped:
            log.warning("streaming specs not run (HEADWATER_REDIS_URL is not set): %s", streams.skipped)
        if streams.kept:
            from headwater.orchestration import orchestration

            os.environ["PREFECT_API_URL"] = api_url  # the keeper's client (Prefect loads after this)
            logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request in up.log
            self.keeper = StreamKeeper(orchestration(), streams.kept, datetime.now(UTC))
        return streams.note()

    def keep_streams(self) -> None:
        """One look at the stream processors' flow runs (start what ended). Errors are logged; the
        next look tries again."""
        if self.keeper is None or self.stopping:
            return
        try:
            self.keeper.tick(datetime.now(UTC))
        except Exception as exc:  # the API may be busy or restarting
            log.warning("could not check the stream processors: %s", exc)

    def _tag(self) -> str:
        """Tells apart the workers of two `up`s on one host (two homes on one server)."""
        import hashlib

        return hashlib.sha256(str(self.settings.home).encode()).hexdigest()[:6]

    def _pools(self) -> list[str]:
        from headwater.deploy import DEFAULT_POOL, all_plans

        plans, _ = all_plans(self.config.pipelines_dir or self.settings.pipelines_dir)
        return sorted({p.work_pool for p in plans} | {DEFAULT_POOL})

    def sweep(self) -> None:
        """Runs on this host whose process died (a flow-run process killed, the OOM killer): marked
        `crashed` now, not only when the pipeline next runs."""
        if self.store is None:
            return
        try:
            for run_id in self.store.mark_crashed():
                log.warning("run %s: its process is gone; marked crashed", run_id)
        except Exception as exc:  # the store may be unreachable for a while: the next sweep tries again
            log.warning("could not sweep for crashed runs: %s", exc)

    def sla_sweep(self) -> None:
        """SLA alerts between runs (headwater.alerting.sla): a deadline with no run, a projected
        miss, a breach. Errors are logged; the next sweep tries again."""
        if self.store is None:
            return
        try:
            from headwater.alerting.sla import check_slas, sla_specs

            specs, _ = sla_specs(self.config.pipelines_dir or self.settings.pipelines_dir)
            check_slas(self.settings, self.store.engine, specs, datetime.now(UTC))
        except Exception as exc:  # the store or a spec may be broken for a while
            log.warning("could not check SLAs: %s", exc)

    def watch(self, sweep_every: float = 10.0, sla_every: float = 60.0, keep_every: float = 5.0) -> None:
        """Restart a child that died (at most 5 times in 5 minutes), sweep for runs whose process
        died, check SLAs and keep the stream processors running (each in a thread of its own: a slow
        channel or API does not hold this loop), until told to stop."""
        last_sweep = last_sla = last_keep = 0.0
        sla_thread: threading.Thread | None = None
        keep_thread: threading.Thread | None = None
        while not self.stopping:
            if (
                self.keeper is not None
                and time.monotonic() - last_keep >= keep_every
                and not (keep_thread and keep_thread.is_alive())
            ):
                keep_thread = threading.Thread(target=self.keep_streams, name="keep-streams", daemon=True)
                keep_thread.start()
                last_keep = time.monotonic()
            if time.monotonic() - last_sweep >= sweep_every:
                self.sweep()
                last_sweep = time.monotonic()
            if time.monotonic() - last_sla >= sla_every and not (sla_thread and sla_thread.is_alive()):
                sla_thread = threading.Thread(target=self.sla_sweep, name="sla-sweep", daemon=True)
                sla_thread.start()
                last_sla = time.monotonic()
            for child in self.children:
                if child.proc is not None and child.proc.poll() is not None and not self.stopping:
                    now = time.monotonic()
                    child.restarts = [t for t in child.restarts if now - t < 300]
                    if len(child.restarts) >= 5:
                        log.error(
                            "%s keeps exiting (code %s): not restarted", child.name, child.proc.returncode
                        )
                        continue
                    log.warning("%s exited with code %s: restarted", child.name, child.proc.returncode)
                    child.restarts.append(now)
                    child.start(self.token)
                    self._write_state()
            self._reap()
            time.sleep(1.0)

    def _end_flow_runs(self, grace: float) -> list[int]:
        """Terminate the processes the workers started (their flow runs); kill what is left after
        `grace`. Their pids."""
        runs: list[psutil.Process] = []
        for child in self.children:
            if child.name.startswith("worker-") and child.proc is not None:
                with contextlib.suppress(psutil.Error):
                    runs += psutil.Process(child.proc.pid).children(recursive=True)
        for run in runs:
            with contextlib.suppress(psutil.Error):
                run.terminate()
        _, alive = psutil.wait_procs(runs, timeout=grace)
        for run in alive:
            with contextlib.suppress(psutil.Error):
                run.kill()
        return [run.pid for run in runs]

    def _reap(self) -> None:
        """Adopted orphans that have ended (we are their subreaper) are waited for here."""
        try:
            while True:
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
        except ChildProcessError:
            pass

    def stop(self, grace: float = 15.0) -> list[int]:
        """End the workers' flow runs first (SIGTERM: a stream processor finishes its batch) while
        their workers and the server record how they end, then the workers (a worker that stops
        kills its flow runs without a word to the server), the console, the server, then anything
        left that carries our token. The pids that were ended."""
        from headwater.supervise import end_descendants

        self.stopping = True
        ended: list[int] = self._end_flow_runs(grace)
        order = sorted(self.children, key=lambda c: c.name == "prefect-server")
        for group in (
            [c for c in order if c.name != "prefect-server"],
            [c for c in order if c.name == "prefect-server"],
        ):
            procs = []
            for child in group:
                if child.proc is not None and child.proc.poll() is None:
                    try:
                        os.killpg(child.proc.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        continue
                    procs.append(child.proc)
            deadline = time.monotonic() + grace
            for proc in procs:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                ended.append(proc.pid)
        end_descendants(self.token, grace=5.0)
        for orphan in psutil.Process().children(recursive=True):  # adopted orphans without the token
            with contextlib.suppress(psutil.Error):
                orphan.kill()
        self._reap()
        with contextlib.suppress(OSError):
            state_path(self.settings).unlink()
        if self.store is not None:
            self.store.dispose()
        return ended


def serve(config: UpConfig, settings: Settings | None = None) -> int:
    """The supervisor's main: start everything, watch it, stop it all on SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = settings or Settings.from_env()
    supervisor = Supervisor(settings, config)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        supervisor.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        supervisor.start()
        supervisor.watch()
    except Exception as exc:  # a start that fails leaves nothing running
        log.error("headwater up failed: %s", exc)
        supervisor._write_state(phase="failed", error=str(exc))
        supervisor.stop()
        return 1
    supervisor.stop()
    return 0


def up(settings: Settings, config: UpConfig, timeout: float = 240.0) -> dict[str, Any]:
    """Start the supervisor (detached) unless one runs for this home; wait until it is ready."""
    settings.ensure_home()
    state = read_state(settings)
    if state is not None:
        return state
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "up.log"
    argv = [
        sys.executable,
        "-m",
        "headwater.services",
        "--workers",
        str(config.workers),
        "--port",
        str(config.port),
        "--console-port",
        str(config.console_port),
    ]
    if not config.console:
        argv.append("--no-console")
    if not config.api:
        argv.append("--no-api")
    else:
        argv += ["--api-port", str(config.api_port)]
    if config.host != "127.0.0.1":
        argv += ["--host", config.host]
    if config.pipelines_dir:
        argv += ["--pipelines", str(config.pipelines_dir)]
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env={**os.environ, "HEADWATER_HOME": str(settings.home)},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # it outlives this command
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise PermanentError(
                "headwater up did not start: " + (" / ".join(tail) or f"exit code {proc.returncode}"),
                hint=f"see {log_path}",
            )
        state = read_state(settings)
        if state and state.get("ready"):
            return state
        time.sleep(0.3)
    os.kill(proc.pid, signal.SIGTERM)
    raise PermanentError(f"headwater up was not ready within {timeout:.0f} s", hint=f"see {log_path}")


def down(settings: Settings, timeout: float = 60.0) -> list[int]:
    """Stop what `up` started; the pids that were running (all ended when this returns)."""
    state = read_state(settings)
    if state is None:
        return []
    pids = [state["supervisor_pid"], *[c["pid"] for c in state.get("children", []) if c.get("pid")]]
    supervisor = psutil.Process(state["supervisor_pid"])
    tree = [supervisor, *supervisor.children(recursive=True)]
    pids = sorted({*pids, *(p.pid for p in tree)})
    supervisor.terminate()
    _, alive = psutil.wait_procs([supervisor], timeout=timeout)
    for proc in alive:
        proc.kill()
    _, alive = psutil.wait_procs(tree, timeout=5)
    for proc in alive:  # nothing of ours outlives down
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return pids


def status(settings: Settings) -> dict[str, Any]:
    """What runs: the supervisor and each child (alive or not), the API's health, deployments, workers."""
    state = read_state(settings)
    if state is None:
        return {"up": False}
    out: dict[str, Any] = {"up": True, **state}
    for child in out.get("children", []):
        child["alive"] = _alive(child.get("pid"), child.get("started"))
    url = state.get("api_url")
    if url:
        import httpx

        try:
            # A refused connection fails at once; a busy server (SQLite under a burst of scheduling on a small
            # machine) may take many seconds to answer, and that is slow, not down.
            with httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0)) as client:
                out["api_healthy"] = client.get(f"{url}/health").status_code == 200
                deployments = client.post(f"{url}/deployments/filter", json={"limit": 200}).json()
                out["deployments"] = sorted(
                    (d["name"], bool(d.get("paused")))
                    for d in deployments
                    if "headwater" in (d.get("tags") or [])
                )
                workers = []
                for pool in sorted({d.get("work_pool_name") for d in deployments if d.get("work_pool_name")}):
                    for w in client.post(f"{url}/work_pools/{pool}/workers/filter", json={}).json():
                        workers.append((pool, w["name"], w.get("status")))
                out["workers"] = workers
        except (httpx.HTTPError, ValueError) as exc:
            out["api_healthy"] = False
            out["api_error"] = f"{type(exc).__name__}: {exc}"
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m headwater.services")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=4200)
    parser.add_argument("--console-port", type=int, default=8501)
    parser.add_argument("--no-console", action="store_true")
    parser.add_argument("--api-port", type=int, default=8600)
    parser.add_argument("--no-api", action="store_true")
    parser.add_argument("--pipelines")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    return serve(UpConfig.from_args(args))


def runner_for(settings: Settings, env: Mapping[str, str]) -> Path | None:
    """The warm runner's socket (flows/runner.py), when `headwater up` runs one and `env` talks to
    its server (a run for another server cannot use it)."""
    state = read_state(settings)
    if not state or not state.get("ready") or not state.get("runner_socket"):
        return None
    if env.get("PREFECT_API_URL") not in (None, "", state.get("api_url")):
        return None
    path = Path(state["runner_socket"])
    return path if path.exists() else None


def run_in_runner(
    socket_path: Path, argv: Sequence[str], env: Mapping[str, str], stdout: int, stderr: int
) -> WorkerOutcome:
    """Run `python -m headwater.cli <argv>` as a fork of the warm runner: its output to the given
    descriptors, signals that would stop this process passed on to it; how it ended."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(socket_path))
        request = {"argv": list(argv), "env": dict(env), "cwd": os.getcwd()}
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [stdout, stderr])
        reader = conn.makefile("rb")
        first = json.loads(reader.readline() or b"{}")
        if "pid" not in first:
            raise PermanentError(f"the runner refused the run: {first.get('error', 'no answer')}")
        pid = int(first["pid"])

        def forward(signum: int, _frame: FrameType | None) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

        previous = {}
        for sig in FORWARDED:
            try:
                previous[sig] = signal.signal(sig, forward)
            except ValueError:
                break
        try:
            while True:
                try:
                    line = reader.readline()
                    break
                except InterruptedError:
                    continue
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        answer = json.loads(line or b"{}")
    if "returncode" not in answer:  # the runner itself went away
        return WorkerOutcome(-signal.SIGKILL, pid, [])
    return WorkerOutcome(int(answer["returncode"]), pid, [])


def env_with_server(settings: Settings, env: Mapping[str, str]) -> dict[str, str]:
    """`env` with PREFECT_API_URL of the running `headwater up`, when there is one and none is set."""
    out = dict(env)
    if not out.get("PREFECT_API_URL"):
        url = running_api_url(settings)
        if url:
            out["PREFECT_API_URL"] = url
    return out


if __name__ == "__main__":
    sys.exit(main())
