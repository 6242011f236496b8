"""The migration's ledger: which rows of definition_groups / group_memberships the migration
wrote, and so which rows backup, restore and rollback may touch (docs/design.md, §10 and §11).

The build records every group and membership it inserts in ``<schema>.migration_ledger_groups``
and ``<schema>.migration_ledger_memberships``, next to the two tables.  A row whose id is not
there was written by somebody else (a legacy script, a hand-made fix): it is *foreign*, and
the operator commands never delete, change or copy it.  ``metadata.source`` is never used to
decide ownership: anyone can write it.

The environment's rows, as the commands see them:

- its *owned groups*: ledger groups of the environment whose row is there, in the environment;
- its *owned memberships*: ledger memberships whose row is there, in an owned group;
- its *kept groups*: owned groups that a foreign membership still references.  Deleting one
  would delete that membership too (``ON DELETE CASCADE``), so it stays, with its foreign
  members; only its owned memberships go;
- everything else of the environment is foreign and stays as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from validation.command import harness_command
from validation.errors import UserFacingError

GROUPS = "migration_ledger_groups"
MEMBERSHIPS = "migration_ledger_memberships"
# one row per environment whose ledger exists (the build adds it: macros/run_state/ledger.sql)
ENVIRONMENTS = "migration_ledger_environments"
HISTORY = ("group_membership_history", "definition_group_history")


@dataclass(frozen=True)
class Tables:
    """The two tables and their ledger in one schema, as SQL identifiers."""

    schema: str

    def names(self, **more: sql.Composable) -> dict[str, sql.Composable]:
        return {
            "groups": sql.Identifier(self.schema, "definition_groups"),
            "memberships": sql.Identifier(self.schema, "group_memberships"),
            "ledger_groups": sql.Identifier(self.schema, GROUPS),
            "ledger_memberships": sql.Identifier(self.schema, MEMBERSHIPS),
            **more,
        }

    def query(self, *parts: str, **more: sql.Composable) -> sql.Composed:
        """``parts`` (constants: names in braces, values as %(name)s parameters) after the
        environment's row sets (OWNED), with the names filled in."""
        text = "".join((OWNED, *parts))
        return sql.SQL(text).format(**self.names(**more))  # type: ignore[arg-type]


# The environment's row sets (module docstring); every query below starts with them.  Each is
# computed once (MATERIALIZED): inlined into a correlated test, the planner would recompute
# the memberships' anti-join for every group.
OWNED = """
with owned_groups as materialized (
    select g.id
    from {groups} g
    join {ledger_groups} lg on lg.group_id = g.id
    where lg.environment = %(environment)s and g.environment = %(environment)s
),
owned_memberships as materialized (
    select m.id, m.group_id, m.symbol
    from {memberships} m
    join {ledger_memberships} lm on lm.membership_id = m.id
    join owned_groups o on o.id = m.group_id
),
kept_groups as materialized (
    select distinct m.group_id as id
    from {memberships} m
    join owned_groups o on o.id = m.group_id
    left join owned_memberships om on om.id = m.id
    where om.id is null
)
"""


def relation_exists(conn: psycopg.Connection, schema: str, name: str) -> bool:
    found = conn.execute(
        "select to_regclass(%s)", (sql.Identifier(schema, name).as_string(conn),)
    ).fetchone()
    return found is not None and found[0] is not None


def require(conn: psycopg.Connection, schema: str, environment: str, looked_in: str = "") -> Tables:
    """The schema's tables, or a one-sentence refusal saying what to do."""
    build = f"'{harness_command()} build --target {environment.lower()}'"
    missing = [t for t in ("definition_groups", "group_memberships") if not relation_exists(
        conn, schema, t)]  # fmt: skip
    if missing:
        raise UserFacingError(
            f"There is no {schema}.{missing[0]}{looked_in}; build the environment first "
            f"({build}), or name the schema it was built in (--schema, --into-schema)."
        )
    if not all(relation_exists(conn, schema, t) for t in (GROUPS, MEMBERSHIPS)):
        raise UserFacingError(
            f"Schema {schema} has no migration ledger ({GROUPS}, {MEMBERSHIPS}){looked_in}, so "
            "which rows the migration wrote is not known and nothing is touched; run a build "
            f"of this release once ({build}: it records the rows the migration wrote), then run "
            "this command again."
        )
    analyze_if_never_analyzed(conn, schema, (GROUPS, MEMBERSHIPS))
    if not started(conn, schema, environment) and _has_groups(conn, schema, environment):
        raise UserFacingError(
            f"The ledger of {environment} in schema {schema} has not been started{looked_in}: "
            "its rows were built by a release before the ledger, and only a build of this "
            f"release records which of them the migration wrote; run {build} first, then this "
            "command again."
        )
    return Tables(schema)


def analyze_if_never_analyzed(conn: psycopg.Connection, schema: str, names: Sequence[str]) -> None:
    """Statistics for tables that have none (a ledger filled by a build minutes ago, a
    scratch schema pg_restore just wrote): planned with the default guess of a few rows, the
    set queries here pick nested loops that are quadratic in the environment's memberships.
    ANALYZE changes no row; on a table the user does not own PostgreSQL only warns."""
    for name in names:
        relation = sql.Identifier(schema, name)
        never = conn.execute(
            "select reltuples < 0 from pg_class where oid = %s::regclass",
            (relation.as_string(conn),),
        ).fetchone()
        if never is not None and never[0]:
            conn.execute(sql.SQL("analyze {}").format(relation))


def started(conn: psycopg.Connection, schema: str, environment: str) -> bool:
    """Whether the environment's ledger exists.  Without the table of started environments
    (a ledger of the two tables only), every environment's does."""
    if not relation_exists(conn, schema, ENVIRONMENTS):
        return True
    return (
        conn.execute(
            sql.SQL("select from {} where environment = %s").format(
                sql.Identifier(schema, ENVIRONMENTS)
            ),
            (environment,),
        ).fetchone()
        is not None
    )


def mark_started(conn: psycopg.Connection, schema: str, environment: str) -> None:
    """A restore into an environment without a ledger (and so without rows: require) starts
    it, as a first build would: the rows it puts back are recorded, nothing is to adopt."""
    if started(conn, schema, environment):
        return
    conn.execute(
        sql.SQL(
            "insert into {} (environment, started_at, adopted_groups, adopted_memberships)"
            " values (%s, clock_timestamp() at time zone 'UTC', 0, 0) on conflict do nothing"
        ).format(sql.Identifier(schema, ENVIRONMENTS)),
        (environment,),
    )


def _has_groups(conn: psycopg.Connection, schema: str, environment: str) -> bool:
    return (
        conn.execute(
            sql.SQL("select from {} where environment = %s limit 1").format(
                sql.Identifier(schema, "definition_groups")
            ),
            (environment,),
        ).fetchone()
        is not None
    )


@dataclass(frozen=True)
class KeptGroup:
    """An owned group that foreign memberships still reference."""

    id: int
    name: str
    type: str
    foreign_memberships: int

    def describe(self) -> str:
        count = self.foreign_memberships
        return (
            f"{self.name} ({self.type}, id {self.id}): {count} membership"
            f"{'' if count == 1 else 's'} written by others still reference"
            f"{'s' if count == 1 else ''} it, and deleting the group would delete "
            f"{'it' if count == 1 else 'them'} too (ON DELETE CASCADE)"
        )


@dataclass(frozen=True)
class Census:
    """The environment's rows by owner (module docstring)."""

    owned_groups: int
    kept_groups: tuple[KeptGroup, ...]
    foreign_groups: int
    owned_memberships: int
    foreign_memberships: int

    @property
    def deletable_groups(self) -> int:
        return self.owned_groups - len(self.kept_groups)


def census(conn: psycopg.Connection, tables: Tables, environment: str) -> Census:
    counts = conn.execute(
        tables.query(
            """
            select
                (select count(*) from owned_groups),
                (select count(*) from {groups} g where g.environment = %(environment)s
                    and not exists (select from owned_groups o where o.id = g.id)),
                (select count(*) from owned_memberships),
                (select count(*) from {memberships} m join {groups} g on g.id = m.group_id
                    where g.environment = %(environment)s
                    and not exists (select from owned_memberships om where om.id = m.id))
            """
        ),
        {"environment": environment},
    ).fetchone()
    assert counts is not None
    return Census(
        int(counts[0]), kept_groups(conn, tables, environment), int(counts[1]), int(counts[2]),
        int(counts[3]),
    )  # fmt: skip


def kept_groups(
    conn: psycopg.Connection, tables: Tables, environment: str
) -> tuple[KeptGroup, ...]:
    rows = conn.execute(
        tables.query(
            """
            select g.id, g.name, g.type, count(*)
            from kept_groups k
            join {groups} g on g.id = k.id
            join {memberships} m on m.group_id = g.id
            where not exists (select from owned_memberships om where om.id = m.id)
            group by g.id, g.name, g.type
            order by g.name, g.id
            """
        ),
        {"environment": environment},
    ).fetchall()
    return tuple(KeptGroup(int(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows)


def lock_owned_groups(conn: psycopg.Connection, tables: Tables, environment: str) -> None:
    """Row locks on the environment's owned groups, in the caller's transaction: a writer
    that adds a membership to one of them (its foreign key check takes a KEY SHARE lock) waits
    until the caller commits, so no foreign membership appears in a group between the moment
    the caller decides the group may go and the moment it deletes it."""
    conn.execute(
        sql.SQL(
            "select g.id from {groups} g join {ledger_groups} lg on lg.group_id = g.id"
            " where lg.environment = %(environment)s and g.environment = %(environment)s"
            " order by g.id for update of g"
        ).format(**tables.names()),
        {"environment": environment},
    )


# delete_owned's two statements: the owned memberships, then the owned groups but the kept
# ones; each either closes the history's open periods of what it deleted or only counts.
DELETE_MEMBERSHIPS = """,
deleted as (
    delete from {memberships} m using owned_memberships om where m.id = om.id
    returning m.group_id, m.symbol
)
"""
CLOSE_MEMBERSHIPS = """,
closed as (
    update {membership_history} h set valid_to = %(moment)s, closed_batch = %(batch)s
    from deleted d
    where h.group_id = d.group_id and h.symbol = d.symbol and h.valid_to is null
    returning 1
)
select (select count(*) from deleted), (select count(*) from closed)
"""
COUNT_MEMBERSHIPS = "select (select count(*) from deleted), 0"
DELETE_GROUPS = """,
deleted as (
    delete from {groups} g using owned_groups o
    where g.id = o.id and not exists (select from {memberships} m where m.group_id = g.id)
    returning g.id
)
"""
CLOSE_GROUPS = """,
closed_groups as (
    update {group_history} h set valid_to = %(moment)s, closed_batch = %(batch)s
    from deleted d where h.group_id = d.id and h.valid_to is null
    returning 1
),
closed_members as (
    update {membership_history} h set valid_to = %(moment)s, closed_batch = %(batch)s
    from deleted d where h.group_id = d.id and h.valid_to is null
    returning 1
)
select (select count(*) from deleted), (select count(*) from closed_groups),
    (select count(*) from closed_members)
"""
COUNT_GROUPS = "select (select count(*) from deleted), 0, 0"


@dataclass(frozen=True)
class Deleted:
    groups: int
    memberships: int
    kept: tuple[KeptGroup, ...]
    history_closed: dict[str, int]


def delete_owned(
    conn: psycopg.Connection,
    tables: Tables,
    environment: str,
    *,
    close_history_at: tuple[Any, Any] | None = None,
) -> Deleted:
    """Delete the environment's owned memberships, then its owned groups but the kept ones,
    then the ledger rows of what is gone, in the caller's transaction (which holds the marts
    lock and lock_owned_groups).  With ``close_history_at`` (moment, batch) the history's open
    periods of exactly the deleted rows are closed then."""
    parameters: dict[str, Any] = {"environment": environment}
    history = [t for t in HISTORY if relation_exists(conn, tables.schema, t)]
    close = close_history_at is not None and len(history) == len(HISTORY)
    if close_history_at is not None:
        parameters["moment"], parameters["batch"] = close_history_at
    kept = kept_groups(conn, tables, environment)
    names = {
        "membership_history": sql.Identifier(tables.schema, HISTORY[0]),
        "group_history": sql.Identifier(tables.schema, HISTORY[1]),
    }
    members = conn.execute(
        tables.query(
            DELETE_MEMBERSHIPS, CLOSE_MEMBERSHIPS if close else COUNT_MEMBERSHIPS, **names
        ),
        parameters,
    ).fetchone()
    # what the environment's groups still hold now is foreign: those groups are the kept ones
    groups = conn.execute(
        tables.query(DELETE_GROUPS, CLOSE_GROUPS if close else COUNT_GROUPS, **names), parameters
    ).fetchone()
    assert members is not None and groups is not None
    forget_gone_rows(conn, tables, environment)
    closed = {HISTORY[0]: int(members[1]) + int(groups[2]), HISTORY[1]: int(groups[1])}
    return Deleted(int(groups[0]), int(members[0]), kept, closed if close else {})


def forget_gone_rows(conn: psycopg.Connection, tables: Tables, environment: str) -> None:
    """Ledger rows of the environment whose row is no longer there."""
    names = tables.names()
    conn.execute(
        sql.SQL(
            "delete from {ledger_memberships} lm where lm.group_id in"
            " (select lg.group_id from {ledger_groups} lg where lg.environment = %(environment)s)"
            " and not exists (select from {memberships} m where m.id = lm.membership_id)"
        ).format(**names),
        {"environment": environment},
    )
    conn.execute(
        sql.SQL(
            "delete from {ledger_groups} lg where lg.environment = %(environment)s"
            " and not exists (select from {groups} g where g.id = lg.group_id)"
        ).format(**names),
        {"environment": environment},
    )


# --- restore: what a backup's rows would collide with -----------------------------------------

# Each check finds one row of the backup (in {backup}, its environment rewritten to
# %(environment)s) that a row this restore keeps already holds: by id, by (name, type,
# environment), by (group_id, symbol), or in the ledger.  The rows a restore keeps: every row
# but the environment's owned memberships and its owned groups that are not kept.
CONFLICTS: Sequence[tuple[str, str]] = (
    (
        "group id",
        """
        select b.id, b.name, b.type, g.id, g.name, g.type, g.environment,
            exists (select from {ledger_groups} l where l.group_id = g.id)
        from {backup}.definition_groups b
        join {groups} g on g.id = b.id
        where not exists (select from owned_groups o where o.id = g.id)
        """,
    ),
    (
        "group name",
        """
        select b.id, b.name, b.type, g.id, g.name, g.type, g.environment,
            exists (select from {ledger_groups} l where l.group_id = g.id)
        from {backup}.definition_groups b
        join {groups} g
            on g.name = b.name and g.type = b.type and g.environment = %(environment)s
        where g.id <> b.id and (
            not exists (select from owned_groups o where o.id = g.id)
            or exists (select from kept_groups k where k.id = g.id)
        )
        """,
    ),
    (
        "membership id",
        """
        select b.id, b.symbol, b.group_id, m.id, m.symbol, m.group_id, '',
            exists (select from {ledger_memberships} l where l.membership_id = m.id)
        from {backup}.group_memberships b
        join {memberships} m on m.id = b.id
        where not exists (select from owned_memberships om where om.id = m.id)
        """,
    ),
    (
        "membership",
        """
        select b.id, b.symbol, b.group_id, m.id, m.symbol, m.group_id, '',
            exists (select from {ledger_memberships} l where l.membership_id = m.id)
        from {backup}.group_memberships b
        join {memberships} m on m.group_id = b.group_id and m.symbol = b.symbol
        where m.id <> b.id and not exists (select from owned_memberships om where om.id = m.id)
        """,
    ),
    (
        "ledger group",
        """
        select b.group_id, b.source_type, b.source_key, l.group_id, l.source_type,
            l.source_key, l.environment, true
        from {backup}.migration_ledger_groups b
        join {ledger_groups} l
            on l.group_id = b.group_id
            or (l.environment, l.group_type, l.source_type, l.source_key)
            = (%(environment)s, b.group_type, b.source_type, b.source_key)
        where (l.environment <> %(environment)s or l.group_id <> b.group_id)
            and exists (select from {groups} g where g.id = l.group_id)
            and (
                not exists (select from owned_groups o where o.id = l.group_id)
                or exists (select from kept_groups k where k.id = l.group_id)
            )
        """,
    ),
    (
        "ledger membership",
        """
        select b.membership_id, '', b.group_id, l.membership_id, '', l.group_id, '', true
        from {backup}.migration_ledger_memberships b
        join {ledger_memberships} l on l.membership_id = b.membership_id
        where not exists (select from owned_memberships om where om.id = l.membership_id)
            and exists (select from {memberships} m where m.id = l.membership_id)
        """,
    ),
)


# The first clash, by the backup row's id.  The search is a MATERIALIZED CTE: with the
# ORDER BY ... LIMIT 1 on the search itself, the planner expects a clash among the first rows
# and picks a nested loop that, when there is none, compares every row with every other.
FIRST_FOUND = ") select * from found order by 1 limit 1"


def _whose(owned: bool, environment: str) -> str:
    return f"a row the migration wrote for {environment}" if owned else "a row written by others"


def _describe(kind: str, row: tuple[Any, ...], environment: str) -> str:
    b_id, b_a, b_b, c_id, c_a, c_b, c_env, owned = row
    if kind == "group id":
        return (
            f"definition_groups id {b_id} (the backup's {b_a}, {b_b}) is held by {c_a} "
            f"({c_b}, {c_env}), {_whose(owned, c_env)}"
        )
    if kind == "group name":
        return (
            f"the backup's group {b_a} ({b_b}, {environment}, id {b_id}) is held by "
            f"definition_groups id {c_id}, {_whose(owned, c_env)}"
        )
    if kind == "membership id":
        return (
            f"group_memberships id {b_id} (the backup's {b_a} in group {b_b}) is held by "
            f"{c_a} in group {c_b}, {_whose(owned, 'its environment')}"
        )
    if kind == "membership":
        return (
            f"the backup's membership {b_a} in group {b_b} (id {b_id}) is held by "
            f"group_memberships id {c_id}, {_whose(owned, 'its environment')}"
        )
    if kind == "ledger group":
        return (
            f"the backup's ledger row for group {b_id} ({b_a} {b_b}) clashes with the ledger's "
            f"row for group {c_id} ({c_a} {c_b}, {c_env})"
        )
    return (
        f"the backup's ledger row for membership {b_id} clashes with the ledger's row for "
        f"membership {c_id} of group {c_b}"
    )


def first_conflict(
    conn: psycopg.Connection, tables: Tables, environment: str, backup: str
) -> str | None:
    """The first row of the backup that a row this restore keeps already holds, described."""
    for kind, text in CONFLICTS:
        row = conn.execute(
            tables.query(
                ", found as materialized (", text, FIRST_FOUND, backup=sql.Identifier(backup)
            ),
            {"environment": environment},
        ).fetchone()
        if row is not None:
            return _describe(kind, tuple(row), environment)
    return None
