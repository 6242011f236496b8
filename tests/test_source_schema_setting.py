"""Where the legacy cache_entries lives is a setting made once, like DBT_SCHEMA:
``DBT_SOURCE_SCHEMA`` serves every dbt command without ``--vars``; and a build against a
database without cache_entries stops before it creates anything -- no schema, no state
table -- naming the setting to change (README, "Use your own PostgreSQL")."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql
from support.databases import PgServer
from support.legacy_cache import LegacyCache, small_cache
from support.shell import run_command, user_environment

DBT = str(Path(sys.executable).parent / "dbt")


def _dbt(
    args: list[str], database: dict[str, str], work: Path, **settings: str
) -> subprocess.CompletedProcess[str]:
    """dbt in a child process, as a user runs it: PG* and DBT_* settings, nothing else."""
    return run_command(
        [DBT, *args], user_environment({**database, "DBT_SCHEMA": "mig", **settings}, work)
    )


@pytest.fixture(scope="module")
def a_company_keeping_its_cache_in_schema_legacy(
    pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """PROD's legacy rows in legacy.cache_entries; nothing in public."""
    name = f"t_source_{uuid.uuid4().hex[:8]}"
    settings = pg_server.recreate_database(name)
    with pg_server.connect(name, autocommit=True) as conn:
        small_cache(LegacyCache(conn).create(), "PROD")
        conn.execute("create schema legacy")
        conn.execute("alter table public.cache_entries set schema legacy")
    yield settings
    pg_server.drop_database(name)


def test_dbt_source_schema_set_once_serves_every_dbt_command(
    a_company_keeping_its_cache_in_schema_legacy: dict[str, str],
    pg_server: PgServer,
    tmp_path: Path,
) -> None:
    database = a_company_keeping_its_cache_in_schema_legacy
    built = _dbt(["build", "--target", "prod"], database, tmp_path, DBT_SOURCE_SCHEMA="legacy")
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
    with pg_server.connect(database["PGDATABASE"]) as conn:
        groups = conn.execute(
            "select count(*) from mig.definition_groups where environment = 'PROD'"
        ).fetchone()
    assert groups is not None and groups[0] > 0

    # another command of the same shell reads the same schema, still without --vars
    shown = _dbt(
        ["show", "--target", "prod", "--inline",
         "select count(*) as legacy_rows from {{ source('legacy', 'cache_entries') }}"],
        database, tmp_path, DBT_SOURCE_SCHEMA="legacy",
    )  # fmt: skip
    assert shown.returncode == 0, shown.stdout[-4000:] + shown.stderr[-2000:]
    assert '"legacy"."cache_entries"' in (tmp_path / "logs" / "dbt.log").read_text()


def _catalog(pg_server: PgServer, database: str) -> list[tuple[str, str]]:
    """Every schema of the database, with each relation in it (or '' for none)."""
    with pg_server.connect(database) as conn:
        return conn.execute(
            "select n.nspname, coalesce(c.relname, '') from pg_namespace n"
            " left join pg_class c on c.relnamespace = n.oid"
            " where n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema'"
            " order by 1, 2"
        ).fetchall()


@pytest.fixture
def a_database_without_cache_entries(pg_server: PgServer) -> Iterator[dict[str, str]]:
    name = f"t_nosource_{uuid.uuid4().hex[:8]}"
    settings = pg_server.recreate_database(name)
    yield settings
    pg_server.drop_database(name)


@pytest.mark.parametrize("schemas", ["missing", "made_by_a_dba"])
def test_a_build_without_cache_entries_creates_nothing_and_names_the_setting(
    a_database_without_cache_entries: dict[str, str],
    pg_server: PgServer,
    tmp_path: Path,
    schemas: str,
) -> None:
    database = a_database_without_cache_entries
    if schemas == "made_by_a_dba":  # dbt creates no schema then: the first hook must stop it
        with pg_server.connect(database["PGDATABASE"], autocommit=True) as conn:
            for schema in (
                "mig",
                "mig_staging_prod",
                "mig_intermediate_prod",
                "mig_ops_prod",
                "mig_compat_prod",
            ):
                conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
    before = _catalog(pg_server, database["PGDATABASE"])

    built = _dbt(["build", "--target", "prod"], database, tmp_path)

    output = built.stdout + built.stderr
    assert built.returncode != 0, output
    assert "There is no table public.cache_entries in database" in output, output
    assert "Set DBT_SOURCE_SCHEMA to the schema that holds the legacy cache_entries" in output
    assert 'relation "public.cache_entries" does not exist' not in output
    assert _catalog(pg_server, database["PGDATABASE"]) == before
