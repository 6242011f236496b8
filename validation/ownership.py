"""Databases the project creates for itself (the demo's, the benchmark's), and only those.

A server the PG* variables point at is somebody's production: the harness may create a
database there for its own use, but it may only replace or drop a database it created itself.
It says so in the database's comment (``COMMENT ON DATABASE``), which is how a later run tells
its own database from a user's database of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql

from validation.connection import connect, describe
from validation.errors import UserFacingError

OWNED_MARK = "created by the sprint59 migration harness"


MAX_NAME_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1: a longer name is cut short, silently


def check_database_name(name: str, option: str = "--database") -> str:
    """``name`` when every step can use it as a database name, else UserFacingError saying
    why, before anything is created.  The harness quotes it (psycopg.sql.Identifier) wherever
    it goes into SQL, but dbt writes a database name between double quotes without doubling
    one inside it, PostgreSQL cuts a name beyond 63 bytes (the next connection then names
    another database), and libpq takes no NUL."""
    problem = ""
    if not name.strip():
        problem = "is empty"
    elif '"' in name:
        problem = "holds a double quote, which dbt cannot quote"
    elif any(ord(char) < 32 or ord(char) == 127 for char in name):
        problem = "holds a control character"
    elif len(name.encode("utf-8")) > MAX_NAME_BYTES:
        problem = f"is longer than PostgreSQL's {MAX_NAME_BYTES} bytes"
    if problem:
        raise UserFacingError(
            f"{option} {name!r} {problem}; nothing was created: choose a name of letters, "
            "digits, '_' or '-' (spaces work too), e.g. sprint59_demo."
        )
    return name


def _comment(purpose: str) -> str:
    return f"{OWNED_MARK} ({purpose}); everything in it was written by the harness"


def database_state(settings: Mapping[str, str], name: str) -> str:
    """'missing', 'owned' (created by the harness) or 'foreign' (somebody else's)."""
    with connect(settings, autocommit=True) as conn:
        row = conn.execute(
            "select shobj_description(oid, 'pg_database') from pg_database where datname = %s",
            (name,),
        ).fetchone()
    if row is None:
        return "missing"
    return "owned" if (row[0] or "").startswith(OWNED_MARK) else "foreign"


def create_owned_database(settings: Mapping[str, str], name: str, purpose: str) -> None:
    """CREATE DATABASE ``name`` and mark it as the harness's own."""
    check_database_name(name)
    try:
        with connect(settings, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("comment on database {} is {}").format(
                    sql.Identifier(name), sql.Literal(_comment(purpose))
                )
            )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise UserFacingError(
            f"{settings.get('PGUSER') or 'this user'} may not create the database {name} on "
            f"{describe(settings)} ({exc.diag.message_primary}); ask a DBA for CREATEDB, or "
            "name an empty database you own with --database."
        ) from exc


def mark_owned(settings: Mapping[str, str], name: str, purpose: str) -> None:
    """Mark an existing database as the harness's (only for the embedded server's own)."""
    with connect(settings, autocommit=True) as conn:
        conn.execute(
            sql.SQL("comment on database {} is {}").format(
                sql.Identifier(name), sql.Literal(_comment(purpose))
            )
        )


def recreate_owned_database(settings: Mapping[str, str], name: str, purpose: str) -> None:
    """Drop and create ``name`` when the harness made it; create it when missing; refuse to
    touch a database of the same name that somebody else made."""
    state = database_state(settings, name)
    if state == "foreign":
        raise UserFacingError(
            f"A database named {name} already exists on {describe(settings)} and was not "
            "created by this harness; it is left alone. Drop it yourself if it is a leftover, "
            "or choose another name."
        )
    if state == "owned":
        with connect(settings, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
    create_owned_database(settings, name, purpose)


def drop_owned_database(settings: Mapping[str, str], name: str) -> None:
    """Drop ``name`` if (and only if) the harness created it."""
    if database_state(settings, name) != "owned":
        return
    with connect(settings, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
