"""The migration's ledger (which rows of the two tables the migration wrote), for tests.

The build's on-run-start hook creates ``<schema>.migration_ledger_groups`` and
``<schema>.migration_ledger_memberships`` and every build records what it writes.  A database
whose build did not make them (a build of an earlier release) gets them here, filled from the
rows a build just wrote: call ``record_built_rows`` right after a build, before a test adds
rows of its own (every group a build writes carries ``metadata.source``; a test's foreign
rows are added afterwards, so they are never recorded)."""

from __future__ import annotations

import psycopg
from psycopg import sql

LEDGER_DDL = """
create table if not exists {schema}.migration_ledger_groups (
    group_id integer primary key,
    environment varchar(10) not null,
    group_type varchar(50) not null,
    source_type varchar(50) not null,
    source_key varchar(100) not null,
    recorded_at timestamp not null,
    unique (environment, group_type, source_type, source_key)
);
create table if not exists {schema}.migration_ledger_memberships (
    membership_id integer primary key,
    group_id integer not null,
    recorded_at timestamp not null
);
"""

RECORD_GROUPS = """
insert into {schema}.migration_ledger_groups
select g.id, g.environment, g.type, g.metadata -> 'source' ->> 'type',
       g.metadata -> 'source' ->> 'key', g.created_at
from {schema}.definition_groups g
where g.metadata -> 'source' ->> 'type' is not null and g.metadata -> 'source' ->> 'key' is not null
on conflict do nothing
"""

RECORD_MEMBERSHIPS = """
insert into {schema}.migration_ledger_memberships
select m.id, m.group_id, m.added_at
from {schema}.group_memberships m
join {schema}.migration_ledger_groups l on l.group_id = m.group_id
on conflict do nothing
"""


def record_built_rows(conn: psycopg.Connection, schema: str = "public") -> None:
    """Make sure the ledger exists and holds every row the builds so far wrote."""
    name = sql.Identifier(schema)
    for statement in (LEDGER_DDL, RECORD_GROUPS, RECORD_MEMBERSHIPS):
        conn.execute(sql.SQL(statement).format(schema=name))  # type: ignore[arg-type]


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
