"""What the connected role may read, checked before a command reads it.

A role that lacks a privilege is told so -- the role, each object with its schema and the
privilege it lacks, and who can grant it -- with its own exit code (PermissionProblem, 4),
instead of a raw ``permission denied for table definition_groups`` that names no schema, or
a validation whose expectations "fail" one by one for a privilege (exit 1, the data-failure
code).  The migration's own tables get their grants from every build when DBT_READER_ROLE
names the role (macros/grants.sql); the legacy cache_entries from its owner, once (README,
"Use your own PostgreSQL").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import psycopg

from validation.errors import PermissionProblem

PRIVILEGES_SQL = """
select has_schema_privilege(n.oid, 'USAGE'), has_table_privilege(c.oid, 'SELECT')
from pg_namespace as n
inner join pg_class as c on c.relnamespace = n.oid
where n.nspname = %s and c.relname = %s
"""


class Named(Protocol):
    """A relation by schema and name (validation.targets.Relation and the like)."""

    @property
    def schema(self) -> str: ...

    @property
    def name(self) -> str: ...


def require_select(
    conn: psycopg.Connection[Any], relations: Iterable[Named], *, legacy: Named | None = None
) -> None:
    """Raise PermissionProblem unless the role has USAGE on the schema of, and SELECT on,
    every relation that exists among ``relations`` (a missing one is the caller's to report:
    it says where it looked).  ``legacy``, when among them, is the legacy cache_entries,
    whose grants come from its owner rather than from the build."""
    lacking_usage: list[str] = []
    lacking_select: list[str] = []
    for relation in relations:
        row = conn.execute(PRIVILEGES_SQL, (relation.schema, relation.name)).fetchone()
        if row is None:
            continue
        usage, select = row
        if not usage and relation.schema not in lacking_usage:
            lacking_usage.append(relation.schema)
        if not select:
            lacking_select.append(f"{relation.schema}.{relation.name}")
    if not (lacking_usage or lacking_select):
        return
    role_row = conn.execute("select current_user").fetchone()
    role = str(role_row[0]) if role_row else "?"
    lacks = []
    if lacking_usage:
        lacks.append("USAGE on schema " + ", ".join(lacking_usage))
    if lacking_select:
        lacks.append("SELECT on " + ", ".join(lacking_select))
    legacy_named = legacy is not None and (
        f"{legacy.schema}.{legacy.name}" in lacking_select or legacy.schema in lacking_usage
    )
    fix = (
        f"every build grants the migration's tables to it when DBT_READER_ROLE={role} is set "
        "for the build"
    )
    if legacy_named:
        fix += ", and the owner of cache_entries grants that once"
    raise PermissionProblem(
        f"Role {role} lacks {' and '.join(lacks)}; {fix} (README, 'Use your own PostgreSQL')."
    )
