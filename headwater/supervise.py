"""Run work in a child process and clean up after it, whatever happens to it.

`headwater run` (and `demo`, `quarantine replay`) do their work in a worker process that this one
watches. The worker starts children of its own (Prefect's temporary API server); if the worker dies
abruptly (a segfault in native code, the kernel's OOM killer, SIGKILL) they would live on, orphaned.
The supervisor makes itself the "child subreaper" (Linux), so orphans of the worker become its
children, and ends every one of them once the worker has gone. It also tells how the worker ended
(exit code or signal), so the run record can say why a run never finished."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any

import psutil

log = logging.getLogger(__name__)
WORKER_ENV = "HEADWATER_WORKER"
"""Set in the worker's environment: the command there does the work instead of supervising."""
TOKEN_ENV = "HEADWATER_WORKER_TOKEN"
"""A token in the environment of the worker and everything it starts: what to clean up, and only that."""
_PR_SET_CHILD_SUBREAPER = 36
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PARENT_PID = os.getpid()


def is_worker(env: Mapping[str, str] | None = None) -> bool:
    return (os.environ if env is None else env).get(WORKER_ENV) == "1"


_PR_SET_PDEATHSIG = 1
_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def prepare_die_with_parent() -> None:
    """Call in the parent before a Popen whose preexec_fn is `die_with_parent`."""
    global _PARENT_PID
    _PARENT_PID = os.getpid()
    if sys.platform.startswith("linux"):
        _libc()  # loaded here, not in the forked child


def die_with_parent() -> None:
    """For `preexec_fn`: the kernel kills this child (SIGKILL) when the process that started it ends,
    however it ends (Linux; elsewhere nothing happens)."""
    if not sys.platform.startswith("linux"):
        return
    parent = _PARENT_PID
    _libc().prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent ended before the line above: end now
        os._exit(1)


def set_subreaper(on: bool) -> bool:
    """Adopt (or stop adopting) this process's orphaned descendants (Linux prctl); False where that
    is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return int(_libc().prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


@dataclass
class WorkerOutcome:
    returncode: int
    """The worker's exit code; negative: the signal that killed it (subprocess' convention)."""
    pid: int
    leftovers: list[str] = field(default_factory=list)
    """Processes the worker left behind that were ended (name and pid)."""

    @property
    def signal_name(self) -> str | None:
        if self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    def describe(self) -> str:
        if self.signal_name:
            return f"was killed by {self.signal_name}"
        return f"exited with code {self.returncode}"


def _carries(proc: psutil.Process, token: str) -> bool:
    try:
        return proc.environ().get(TOKEN_ENV) == token
    except psutil.Error:
        return False


def end_descendants(token: str, grace: float = 5.0) -> list[str]:
    """Terminate every process below this one whose environment carries `token` (what one worker
    started), then kill what is still there after `grace`."""
    me = psutil.Process()
    try:
        children = [c for c in me.children(recursive=True) if _carries(c, token)]
    except psutil.Error:
        return []
    ended = []
    for child in children:
        try:
            ended.append(f"{child.name()} ({child.pid})")
            child.terminate()
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(children, timeout=grace)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(alive, timeout=grace)
    return ended


def run_worker(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    stdout: IO[Any] | int | None = None,
    stderr: IO[Any] | int | None = None,
) -> WorkerOutcome:
    """Run `argv` as the worker (WORKER_ENV set) and wait for it; signals that would stop this
    process are passed on to it, so it can finish its run record; then whatever it left behind is
    ended. The worker gets its own process group, so a terminal's Ctrl-C reaches it once (from here)."""
    token = uuid.uuid4().hex
    adopting = set_subreaper(True)
    prepare_die_with_parent()
    proc = subprocess.Popen(
        list(argv),
        env={**env, WORKER_ENV: "1", TOKEN_ENV: token},
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        process_group=0,
        preexec_fn=die_with_parent,  # the worker does not outlive this command (kill -9 included)
    )

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous = {}
    for sig in FORWARDED:
        try:
            previous[sig] = signal.signal(sig, forward)
        except ValueError:  # not the main thread: signals stay as they are
            break
    try:
        returncode = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    leftovers = end_descendants(token)
    if adopting:
        set_subreaper(False)
    if leftovers:
        log.warning("the worker left %s behind: ended", ", ".join(leftovers))
    return WorkerOutcome(returncode, proc.pid, leftovers)
