"""Class database errors by what the caller should do: retry (transient) or fail fast."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

_TRANSIENT_PG_CLASSES = ("08", "53", "57P")  # connection, insufficient resources, operator intervention
_TRANSIENT_PG_CODES = {"40001", "40P01", "55P03"}  # serialization, deadlock, lock not available


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DisconnectionError | PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    code = getattr(orig, "pgcode", None)
    if code:
        return code in _TRANSIENT_PG_CODES or code.startswith(_TRANSIENT_PG_CLASSES)
    text = str(orig).lower()
    if "database is locked" in text or "database is busy" in text:
        return True
    module = type(orig).__module__
    # psycopg2 raises OperationalError without a code when it cannot connect at all
    return module.startswith("psycopg2") and type(orig).__name__ == "OperationalError"


def first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__
