"""The analyst tables against the two tables, by the checks `validate` runs."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from validation.validate_queries import GROUP_HOLDINGS_SQL


def group_holdings_differences(conn: psycopg.Connection, environment: str) -> list[tuple[Any, ...]]:
    """The rows where group_holdings and the migration's rows of the two tables disagree, by
    validate's own check (validation/validate_queries.py), for one environment."""
    names = {
        "groups": "definition_groups",
        "memberships": "group_memberships",
        "ledger_groups": "migration_ledger_groups",
        "ledger_memberships": "migration_ledger_memberships",
        "batch": "group_holdings",
    }
    statement = sql.SQL(GROUP_HOLDINGS_SQL).format(
        **{key: sql.Identifier(name) for key, name in names.items()},
        environment=sql.Placeholder("environment"),
    )
    return conn.execute(statement, {"environment": environment}).fetchall()
