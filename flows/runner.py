"""The warm runner `headwater up` keeps: a process that has already imported Prefect, Polars and every
flow, and forks a copy of itself for each `headwater run` (and demo, replay) while the server is up,
so a run does not pay ~2 s of interpreter start and imports. The fork runs exactly what the worker
process would (`headwater.cli.main` with the worker's argv and the caller's environment), with the
caller's stdout and stderr (passed over the socket), and its exit status goes back to the caller.

Protocol (one connection per run, a Unix socket only this user can open): the caller sends one JSON
line {"argv", "env", "cwd"} with its two output file descriptors; the runner answers {"pid"} when the
fork started and {"returncode"} (negative: killed by that signal) when it ended."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import flows.adapter  # what headwater.orchestration finds by name
import flows.pipeline  # noqa: F401  (the point: imported once, here, before any fork)
import headwater.cli
import headwater.orchestration  # noqa: F401


def _child(request: dict[str, Any], fds: list[int]) -> None:
    """In the fork: become the worker the caller would have started, then exit with its code."""
    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        os.setpgid(0, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in fds:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = ["headwater", *request["argv"]]
        from headwater.cli import main

        code = int(main(request["argv"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        # what a normal interpreter exit would do for this process (os._exit skips it): Prefect's
        # event and log workers send what they hold, then output is flushed
        with contextlib.suppress(Exception):
            threading._shutdown()  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):
            import atexit

            atexit._run_exitfuncs()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _serve_one(conn: socket.socket) -> None:
    with conn:
        message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 2)
        data = message
        while not data.endswith(b"\n"):
            more = conn.recv(1 << 20)
            if not more:
                break
            data += more
        request = json.loads(data)
        if len(fds) != 2:
            conn.sendall(json.dumps({"error": "send stdout and stderr"}).encode() + b"\n")
            return
        pid = os.fork()
        if pid == 0:
            conn.close()
            _child(request, fds)
        for fd in fds:
            os.close(fd)
        conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"returncode": code}).encode() + b"\n")


def serve(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket: this user only
    try:
        server.bind(str(path))
    finally:
        os.umask(old)
    server.listen(64)
    stopping = threading.Event()

    def stop(_signum: int, _frame: Any) -> None:
        stopping.set()
        server.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"runner ready on {path}", flush=True)
    while not stopping.is_set():
        try:
            conn, _ = server.accept()
        except OSError:
            break
        threading.Thread(target=_serve_one, args=(conn,), daemon=True).start()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.runner")
    parser.add_argument("--socket", required=True)
    serve(Path(parser.parse_args().socket))


if __name__ == "__main__":
    main()
