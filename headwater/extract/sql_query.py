"""Checking an SQL source's `query:` before it runs: one read-only SELECT in the database's dialect
(parsed with sqlglot), and the `:name` placeholders it binds."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from headwater.spec.models import ConnectionRef


def dialect_of(backend: str | None) -> str | None:
    """sqlglot's dialect for a SQLAlchemy backend name (`engine.dialect.name`); None: generic."""
    dialects = {
        "postgresql": "postgres",
        "sqlite": "sqlite",
        "mysql": "mysql",
        "mariadb": "mysql",
        "mssql": "tsql",
        "oracle": "oracle",
        "duckdb": "duckdb",
        "snowflake": "snowflake",
        "bigquery": "bigquery",
        "redshift": "redshift",
        "trino": "trino",
        "databricks": "databricks",
        "clickhouse": "clickhouse",
    }
    return dialects.get(backend or "")


def url_dialect(connection: ConnectionRef | None) -> str | None:
    """The dialect a connection's URL names, when it can be read here (not a block, no unset ${VAR})."""
    if connection is None or connection.url is None or "${" in connection.url:
        return None
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError

    try:
        return dialect_of(sa.make_url(connection.url).get_backend_name())
    except ArgumentError:
        return None


def check_select(query: str, dialect: str | None) -> None:
    """Raise ValueError unless `query` is one read-only SELECT (or WITH ... SELECT) in `dialect`."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    try:
        statements = [s for s in sqlglot.parse(query, read=dialect) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first else ""
        what = first.get("description") or str(exc).splitlines()[0]
        what = re.sub(r"<Token token_type: [^,]*, text: ([^,]*),[^>]*>", r"'\1'", what)
        raise ValueError(f"query is not valid SQL ({dialect or 'generic'}){where}: {what}") from None
    except TokenError as exc:
        raise ValueError(f"query is not valid SQL ({dialect or 'generic'}): {exc}") from None
    if len(statements) != 1:
        raise ValueError(
            f"query must be exactly one SELECT statement, found {len(statements)}; "
            "join or UNION inside one SELECT, or use one source per statement"
        )
    root = statements[0]
    while isinstance(root, exp.Subquery):
        root = root.this
    if not isinstance(root, exp.Select | exp.Union | exp.Intersect | exp.Except):
        raise ValueError(
            f"query must be a SELECT (or WITH ... SELECT), not {root.key.upper()}: "
            "a source only reads; write to the warehouse with a load step"
        )
    statement_kinds = (
        "Insert Update Delete Merge Create Drop Alter TruncateTable Copy Command Pragma Set Use "
        "Transaction Commit Rollback Grant Revoke Analyze LoadData Cache Uncache Refresh Comment Kill "
        "Execute Declare"
    )
    writes = tuple(getattr(exp, name) for name in statement_kinds.split() if hasattr(exp, name))
    for node in statements[0].walk():
        if isinstance(node, exp.Into):
            raise ValueError("query must not use SELECT ... INTO (it creates a table): a source reads")
        if isinstance(node, exp.Lock):
            raise ValueError("query must not lock rows (FOR UPDATE / FOR SHARE); a source only reads")
        if isinstance(node, writes):
            raise ValueError(
                f"query must only read, but contains {node.key.upper()}; "
                "a source only reads: write with a load step"
            )


def placeholders(query: str) -> set[str]:
    """The :name placeholders SQLAlchemy binds in `query` (a literal colon is written `\\:`)."""
    import sqlalchemy as sa

    return set(sa.text(query).compile().params)
