"""Least privilege, proven with real roles: the build needs CREATE on its own schemas only (a
DBA made them for it; it may not create schemas, databases or roles), and the read-only paths
work for a role with nothing but CONNECT, USAGE and SELECT — and leave nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg import sql
from support.databases import PROJECT_ROOT, PgServer
from support.legacy_cache import LegacyCache, small_cache

OUTPUT_SCHEMA = "mig"
LEGACY_SCHEMA = "legacy"
OWN_SCHEMAS = (
    OUTPUT_SCHEMA,
    f"{OUTPUT_SCHEMA}_staging_test",
    f"{OUTPUT_SCHEMA}_intermediate_test",
    f"{OUTPUT_SCHEMA}_ops_test",
    f"{OUTPUT_SCHEMA}_compat_test",
)
VARS = json.dumps({"source_schema": LEGACY_SCHEMA})


@dataclass(frozen=True)
class Roles:
    database: str
    builder: str
    reader: str
    settings: Mapping[str, str]  # the admin's, for the database
    work: Path


def _as(roles: Roles, user: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PG")},
        **roles.settings,
        "PGUSER": user,
        "DBT_SCHEMA": OUTPUT_SCHEMA,
        "DO_NOT_TRACK": "1",
        "DBT_TARGET_PATH": str(roles.work / f"target-{user}"),
        "DBT_LOG_PATH": str(roles.work / f"logs-{user}"),
    }


def _run(command: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=dict(env), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip


DBT = str(Path(sys.executable).parent / "dbt")
HARNESS = [sys.executable, "-m", "validation"]


@pytest.fixture(scope="module")
def a_builder_owning_only_its_schemas(
    pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Roles]:
    """A database where a DBA put the legacy cache in schema `legacy`, created the four
    schemas of the TEST build for a login role `builder` (no CREATEDB, no CREATEROLE, no
    CREATE on the database), and made a login role `reader` with no privilege yet."""
    tag = uuid.uuid4().hex[:8]
    database, builder, reader = f"t_lp_{tag}", f"builder_{tag}", f"reader_{tag}"
    settings = pg_server.recreate_database(database)
    with pg_server.connect(database, autocommit=True) as admin:
        small_cache(LegacyCache(admin).create(), "TEST")
        admin.execute(sql.SQL("create schema {}").format(sql.Identifier(LEGACY_SCHEMA)))
        admin.execute(
            sql.SQL("alter table public.cache_entries set schema {}").format(
                sql.Identifier(LEGACY_SCHEMA)
            )
        )
        for role in (builder, reader):
            admin.execute(
                sql.SQL("create role {} login nosuperuser nocreatedb nocreaterole").format(
                    sql.Identifier(role)
                )
            )
        admin.execute(sql.SQL("revoke create on database {} from public").format(
            sql.Identifier(database)))  # fmt: skip
        admin.execute(sql.SQL("revoke create on schema public from public"))
        for schema in OWN_SCHEMAS:
            admin.execute(
                sql.SQL("create schema {} authorization {}").format(
                    sql.Identifier(schema), sql.Identifier(builder)
                )
            )
        admin.execute(
            sql.SQL("grant usage on schema {} to {}").format(
                sql.Identifier(LEGACY_SCHEMA), sql.Identifier(builder)
            )
        )
        admin.execute(
            sql.SQL("grant select on {} to {}").format(
                sql.Identifier(LEGACY_SCHEMA, "cache_entries"), sql.Identifier(builder)
            )
        )
    roles = Roles(database, builder, reader, settings, tmp_path_factory.mktemp("least_privilege"))
    try:
        yield roles
    finally:
        pg_server.drop_database(database)
        with pg_server.connect(autocommit=True) as admin:
            for role in (builder, reader):
                admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


@pytest.fixture(scope="module")
def built_by_the_builder(a_builder_owning_only_its_schemas: Roles) -> Roles:
    roles = a_builder_owning_only_its_schemas
    built = _run([*HARNESS, "build", "--target", "test", "--vars", VARS], _as(roles, roles.builder))
    assert built.returncode == 0, built.stdout + built.stderr
    return roles


def test_the_build_needs_create_only_on_its_own_schemas(
    built_by_the_builder: Roles, pg_server: PgServer
) -> None:
    roles = built_by_the_builder
    with pg_server.connect(roles.database) as admin:
        owners = admin.execute(
            "select distinct n.nspname from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where c.relowner = (select oid from pg_roles where rolname = %s)"
            " and n.nspname <> 'pg_toast'",
            (roles.builder,),
        ).fetchall()
        groups = admin.execute("select count(*) from mig.definition_groups").fetchone()
        analyst_reads = admin.execute(
            "select has_table_privilege('analyst', 'mig.definition_groups', 'select')"
        ).fetchone()
    assert {o[0] for o in owners} <= set(OWN_SCHEMAS)
    assert groups is not None and groups[0] > 0
    assert analyst_reads == (True,), "the build grants SELECT to the role the DBA made"


def _grant_read_only(roles: Roles, pg_server: PgServer) -> None:
    """CONNECT, USAGE and SELECT: the most a reader of the migration gets."""
    with pg_server.connect(roles.database, autocommit=True) as admin:
        reader = sql.Identifier(roles.reader)
        admin.execute(
            sql.SQL("grant connect on database {} to {}").format(
                sql.Identifier(roles.database), reader
            )
        )
        for schema in (*OWN_SCHEMAS, LEGACY_SCHEMA):
            name = sql.Identifier(schema)
            admin.execute(sql.SQL("grant usage on schema {} to {}").format(name, reader))
            admin.execute(
                sql.SQL("grant select on all tables in schema {} to {}").format(name, reader)
            )


READ_ONLY_PATHS = {
    "validate": [*HARNESS, "validate", "--target", "test", "--timings", "report"],
    "query": [*HARNESS, "query", "etf", "SPY", "--target", "test"],
    "retirement": [*HARNESS, "retirement", "--target", "test"],
    "dbt docs generate": [DBT, "docs", "generate", "--target", "test", "--vars", VARS],
    "dbt source freshness": [DBT, "source", "freshness", "--target", "test", "--vars", VARS],
}


@pytest.fixture(scope="module")
def read_only_runs(
    built_by_the_builder: Roles, pg_server: PgServer
) -> dict[str, subprocess.CompletedProcess[str]]:
    roles = built_by_the_builder
    _grant_read_only(roles, pg_server)
    env = _as(roles, roles.reader)
    # validate reads the manifest of the build it checks: the builder's
    env["DBT_TARGET_PATH"] = str(roles.work / f"target-{roles.builder}")
    return {label: _run(command, env) for label, command in READ_ONLY_PATHS.items()}


@pytest.mark.parametrize("label", list(READ_ONLY_PATHS))
def test_a_read_only_path_works_with_connect_usage_and_select(
    read_only_runs: dict[str, subprocess.CompletedProcess[str]], label: str
) -> None:
    ran = read_only_runs[label]
    output = ran.stdout + ran.stderr
    assert "permission denied" not in output.lower(), output
    assert "Traceback" not in output, output
    expected = {"retirement": (0, 1), "dbt source freshness": (0, 1)}.get(label, (0,))
    assert ran.returncode in expected, output


def test_the_reader_wrote_nothing(
    read_only_runs: dict[str, subprocess.CompletedProcess[str]],
    built_by_the_builder: Roles,
    pg_server: PgServer,
) -> None:
    roles = built_by_the_builder
    with pg_server.connect(roles.database) as admin:
        owned = admin.execute(
            "select count(*) from pg_class where relowner = (select oid from pg_roles"
            " where rolname = %s)",
            (roles.reader,),
        ).fetchone()
    assert owned == (0,)
