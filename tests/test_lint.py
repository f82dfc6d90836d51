"""House style: ruff clean everywhere, mypy clean on the domain and blocks."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

CHECKED = ["headwater", "flows", "tasks", "blocks", "console", "tests", "bench"]


def test_ruff() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", *CHECKED],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
