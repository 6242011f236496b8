"""Reading the migration's ledger (which rows of the two tables the migration wrote:
macros/run_state/ledger.sql) in tests."""

from __future__ import annotations

import psycopg
from psycopg import sql

LEDGER_TABLES = ("migration_ledger_groups", "migration_ledger_memberships")


def ledger_ids(conn: psycopg.Connection, environment: str) -> tuple[set[int], set[int]]:
    """The ids of the environment's ledger groups and ledger memberships."""
    groups = {
        row[0]
        for row in conn.execute(
            "select group_id from migration_ledger_groups where environment = %s", (environment,)
        ).fetchall()
    }
    memberships = {
        row[0]
        for row in conn.execute(
            "select membership_id from migration_ledger_memberships where group_id = any(%s)",
            (list(groups),),
        ).fetchall()
    }
    return groups, memberships


def copy_ledger_tables(conn: psycopg.Connection, schema: str) -> None:
    """Empty ledger tables in ``schema``, as a build of that schema makes them."""
    for table in LEDGER_TABLES:
        conn.execute(
            sql.SQL("create table {} (like {} including all)").format(
                sql.Identifier(schema, table), sql.Identifier("public", table)
            )
        )
