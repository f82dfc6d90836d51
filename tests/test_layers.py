"""The domain knows nothing of Prefect or Streamlit, and `headwater validate` stays cheap: importing
every domain module pulls in neither, nor great_expectations or sklearn."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import importlib, pkgutil, sys
import headwater
for mod in pkgutil.walk_packages(headwater.__path__, "headwater."):
    if ".migrations" not in mod.name:
        importlib.import_module(mod.name)
loaded = {m.split(".")[0] for m in sys.modules}
heavy = sorted(loaded & {"prefect", "streamlit", "great_expectations", "sklearn"})
print(",".join(heavy) or "none")
"""


def test_domain_imports_no_orchestrator_or_ui() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "none"
