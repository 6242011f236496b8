"""The command works where a user is, not only in the checkout's root with the venv's Python:
`make setup` installs the project into .venv with its console script `sprint59`, which runs
from any directory (by its path, or on PATH once the venv is active) and finds the dbt
project beside its package; dbt runs from anywhere with the documented DBT_PROJECT_DIR and
DBT_PROFILES_DIR; the commands the harness prints work as printed; and the README gives the
cache_entries DDL a user needs (README, "Use your own PostgreSQL")."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg import sql
from support.databases import PROJECT_ROOT, PgServer
from support.legacy_cache import LegacyCache, small_cache
from support.shell import readme_block, run_command, user_environment

from validation.sample import ensure_table

VENV_BIN = Path(sys.executable).parent
SPRINT59 = VENV_BIN / "sprint59"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"  # a shell without the venv on PATH


@dataclass(frozen=True)
class Elsewhere:
    """A user's shell in a directory of their own, far from the checkout."""

    directory: Path
    database: dict[str, str]

    def run(self, command: list[str], *, active_venv: bool = False, **settings: str):
        env = user_environment({**self.database, "DBT_SCHEMA": "mig", **settings}, self.directory)
        env.pop("VIRTUAL_ENV", None)
        env["PATH"] = f"{VENV_BIN}:{SYSTEM_PATH}" if active_venv else SYSTEM_PATH
        return run_command(command, env, cwd=self.directory)


@pytest.fixture(scope="module")
def a_users_own_directory(
    pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Elsewhere]:
    """PROD's legacy rows in legacy.cache_entries, and a working directory outside the
    checkout, with no profiles.yml and no dbt_project.yml."""
    name = f"t_elsewhere_{uuid.uuid4().hex[:8]}"
    database = pg_server.recreate_database(name)
    with pg_server.connect(name, autocommit=True) as conn:
        small_cache(LegacyCache(conn).create(), "PROD")
        conn.execute("create schema legacy")
        conn.execute("alter table public.cache_entries set schema legacy")
    directory = tmp_path_factory.mktemp("elsewhere")
    try:
        yield Elsewhere(directory, database)
    finally:
        pg_server.drop_database(name)


def test_make_setup_installs_the_command_into_the_venv() -> None:
    assert SPRINT59.is_file(), "make setup should install the project's console script"
    assert os.access(SPRINT59, os.X_OK)


def test_the_installed_command_builds_and_queries_from_another_directory(
    a_users_own_directory: Elsewhere,
) -> None:
    shell = a_users_own_directory
    built = shell.run([str(SPRINT59), "build", "--target", "prod"], DBT_SOURCE_SCHEMA="legacy")
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
    assert not (shell.directory / "profiles.yml").exists()

    by_path = shell.run([str(SPRINT59), "query", "etf", "SPY", "--target", "prod"])
    assert by_path.returncode == 0, by_path.stdout + by_path.stderr
    assert "ETF SPY in PROD" in by_path.stdout
    on_path = shell.run(["sprint59", "query", "etf", "SPY", "--target", "prod"], active_venv=True)
    assert on_path.returncode == 0, on_path.stdout + on_path.stderr
    assert on_path.stdout == by_path.stdout


def test_the_venvs_python_runs_the_module_from_another_directory(tmp_path: Path) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "validation", "--help"], cwd=tmp_path,
        env={**os.environ, "PATH": SYSTEM_PATH}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "build" in ran.stdout and "validate" in ran.stdout


def test_dbt_runs_from_another_directory_with_the_documented_settings(
    a_users_own_directory: Elsewhere,
) -> None:
    shell = a_users_own_directory
    dbt = [str(VENV_BIN / "dbt"), "debug", "--target", "prod"]
    found = shell.run(dbt, DBT_PROJECT_DIR=str(PROJECT_ROOT), DBT_PROFILES_DIR=str(PROJECT_ROOT))
    assert found.returncode == 0, found.stdout[-3000:] + found.stderr
    assert "All checks passed!" in found.stdout
    # without them, dbt finds neither (which is why the README names them)
    assert shell.run(dbt).returncode != 0


@pytest.mark.parametrize("where", ["the checkout", "another directory"])
@pytest.mark.parametrize("active_venv", [False, True], ids=["by_path", "venv_active"])
def test_a_printed_command_works_as_printed(where: str, active_venv: bool, tmp_path: Path) -> None:
    """What the demo and the other commands print (``cli_parser.harness_command``), pasted
    into the same shell, runs the harness."""
    directory = PROJECT_ROOT if where == "the checkout" else tmp_path
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{VENV_BIN}:{SYSTEM_PATH}" if active_venv else SYSTEM_PATH

    def shell(command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=directory, env=env, capture_output=True, text=True, check=False
        )

    printed = shell(
        [sys.executable, "-c", "from validation.cli_parser import harness_command as h; print(h())"]
    ).stdout.strip()
    expected = {
        (True, "the checkout"): "sprint59",
        (True, "another directory"): "sprint59",
        (False, "the checkout"): ".venv/bin/sprint59",
        (False, "another directory"): str(SPRINT59),
    }[active_venv, where]
    assert printed == expected
    ran = shell([*shlex.split(printed), "db", "status"])
    assert ran.returncode in (0, 3), ran.stdout + ran.stderr  # 3: the embedded server is down
    assert "embedded PostgreSQL" in ran.stdout
    helped = shell([*shlex.split(printed), "--help"])
    assert helped.stdout.startswith(f"usage: {printed} ")


COLUMNS_SQL = """
select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       regexp_replace(coalesce(pg_get_expr(d.adbin, d.adrelid), ''), '[a-z_]+\\.', '')
from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum
"""
CONSTRAINTS_SQL = """
select conname, contype, pg_get_constraintdef(oid) from pg_constraint
where conrelid = %s::regclass order by conname
"""


def test_the_readmes_cache_entries_ddl_is_the_table_the_sample_loader_makes(
    pg_server: PgServer,
) -> None:
    ddl = readme_block("cache-entries-ddl")
    name = f"t_ddl_{uuid.uuid4().hex[:8]}"
    pg_server.recreate_database(name)
    try:
        with pg_server.connect(name, autocommit=True) as conn:
            conn.execute("create schema legacy")
            conn.execute(sql.SQL(ddl))  # type: ignore[arg-type]
            ensure_table(conn, "sample")
            readme, loader = (
                (
                    conn.execute(COLUMNS_SQL, (table,)).fetchall(),
                    conn.execute(CONSTRAINTS_SQL, (table,)).fetchall(),
                )
                for table in ("legacy.cache_entries", "sample.cache_entries")
            )
    finally:
        pg_server.drop_database(name)
    assert readme == loader
    assert [column[0] for column in readme[0]] == [
        "id", "type", "name", "key", "value", "environment", "description", "created_at",
        "updated_at",
    ]  # fmt: skip
