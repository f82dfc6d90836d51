"""The layers hold: `lint-imports` keeps the contracts in pyproject.toml ([tool.importlinter]): console ->
flows -> tasks | blocks -> headwater, and the domain imports no Prefect, Streamlit, flows, tasks, blocks
or console (the CLI reaches Prefect through headwater.orchestration). And the check can fail: an
import inside a function, where the domain's lazy imports live, is seen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_repository_keeps_its_import_contracts() -> None:
    proc = lint_imports(cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 kept, 0 broken" in proc.stdout


def test_an_import_inside_a_function_breaks_the_contract(tmp_path: Path) -> None:
    package = tmp_path / "headwater_fake"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "domain.py").write_text(
        "def deploy() -> None:\n    from prefect import get_client\n\n    get_client()\n"
    )
    config = tmp_path / "contracts.toml"
    config.write_text(
        """\
[tool.importlinter]
root_packages = ["headwater_fake"]
include_external_packages = true

[[tool.importlinter.contracts]]
name = "no orchestrator in the domain"
type = "forbidden"
source_modules = ["headwater_fake"]
forbidden_modules = ["prefect"]
"""
    )
    proc = lint_imports(str(config), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no orchestrator in the domain BROKEN" in proc.stdout
    assert "headwater_fake.domain -> prefect (l.2)" in proc.stdout
