"""The console's tests use the golden store (tests/golden.py; its fixtures are registered in
tests/conftest.py)."""

from tests.golden import APP, PASSWORD, Console, Golden, app, sqlite_only, write_alerts

__all__ = ["APP", "PASSWORD", "Console", "Golden", "app", "sqlite_only", "write_alerts"]
