"""When the whole op test suite runs, every registered op must have had its lineage checked against
what it does (tests/transform/lineage_check.py records which ones were)."""

from __future__ import annotations

import pytest

from headwater.transform import OP_REGISTRY
from tests.transform import lineage_check

MODULES = {"aggregate", "columns", "combine", "dates", "numbers", "privacy", "rows", "strings", "structure"}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if exitstatus != 0 or config.option.keyword or config.option.markexpr or config.option.maxfail:
        return
    modules = {getattr(item.module, "__name__", "") for item in session.items}
    if not {f"tests.transform.test_ops_{m}" for m in MODULES} <= modules:
        return
    missing = sorted(set(OP_REGISTRY) - lineage_check.CHECKED)
    if missing:
        print(f"\nops whose lineage no test checked: {', '.join(missing)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
