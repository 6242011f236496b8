"""The harness finds a target's tables from that target's own build, as the database's run
log records it -- never from whatever dbt command last wrote a manifest.  An operator builds
PROD into schema `mig` from the legacy cache in schema `legacy`, then runs `dbt docs
generate`, `dbt source freshness` and `dbt run-operation` in the same shell (each rewrites
target/manifest.json, with `public` as the source schema); the harness's commands still
check the build, in everyone's shell (validation/targets.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from support.databases import PROJECT_ROOT, PgServer
from support.legacy_cache import LegacyCache, small_cache
from support.shell import run_command, user_environment

from validation.validate import EXPECTATIONS_DIR

DBT = str(Path(sys.executable).parent / "dbt")
HARNESS = [sys.executable, "-m", "validation"]


@dataclass(frozen=True)
class Shell:
    database: dict[str, str]
    work: Path
    expectations: Path  # the compact cache's figures, for PROD

    def run(self, command: list[str], **settings: str) -> subprocess.CompletedProcess[str]:
        """A command in a shell with the PG* settings, the shared target/ and ``settings``."""
        return run_command(command, user_environment({**self.database, **settings}, self.work))


def _compact_expectations(work: Path) -> Path:
    spec = yaml.safe_load((EXPECTATIONS_DIR / "test.yml").read_text(encoding="utf-8"))
    spec["environment"] = "PROD"
    path = work / "prod_compact.yml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def a_build_followed_by_other_dbt_commands(
    pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shell]:
    """`build --target prod --vars '{source_schema: legacy}'` with DBT_SCHEMA=mig, then three
    other dbt commands in the same shell, without --vars."""
    name = f"t_find_{uuid.uuid4().hex[:8]}"
    database = pg_server.recreate_database(name)
    with pg_server.connect(name, autocommit=True) as conn:
        small_cache(LegacyCache(conn).create(), "PROD")
        conn.execute("create schema legacy")
        conn.execute("alter table public.cache_entries set schema legacy")
    work = tmp_path_factory.mktemp("finding")
    shell = Shell(database, work, _compact_expectations(work))
    built = shell.run(
        [*HARNESS, "build", "--target", "prod", "--vars", json.dumps({"source_schema": "legacy"})],
        DBT_SCHEMA="mig",
    )
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
    build_manifest = work / "target" / "prod" / "manifest.json"
    for command in (
        [DBT, "docs", "generate", "--target", "prod"],
        [DBT, "source", "freshness", "--target", "prod"],  # fails: public has no cache_entries
        [DBT, "run-operation", "prune_history", "--target", "prod",
         "--args", json.dumps({"retention_days": 365})],
    ):  # fmt: skip
        shell.run(command, DBT_SCHEMA="mig")
    plain = work / "target" / "manifest.json"
    assert plain.stat().st_mtime > build_manifest.stat().st_mtime, "dbt wrote no newer manifest"
    assert (
        json.loads(plain.read_text())["sources"]["source.sprint59_migration.legacy.cache_entries"][
            "schema"
        ]
        == "public"
    ), "the last manifest should name the wrong source schema"
    try:
        yield shell
    finally:
        pg_server.drop_database(name)


def test_validate_checks_the_build_not_the_last_manifest(
    a_build_followed_by_other_dbt_commands: Shell,
) -> None:
    shell = a_build_followed_by_other_dbt_commands
    ran = shell.run(
        [*HARNESS, "validate", "--target", "prod", "--timings", "report",
         "--expectations", str(shell.expectations)],
        DBT_SCHEMA="mig",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr
    assert "where the run log records the build of PROD: dbt invocation" in ran.stdout
    assert "in mig.migration_run_log; cache_entries in legacy" in ran.stdout


@pytest.mark.parametrize(
    "command",
    [["query", "etf", "SPY", "--target", "prod"], ["retirement", "--target", "prod"]],
    ids=["query", "retirement"],
)
def test_another_persons_shell_finds_the_build_with_no_setting(
    a_build_followed_by_other_dbt_commands: Shell, command: list[str]
) -> None:
    ran = a_build_followed_by_other_dbt_commands.run([*HARNESS, *command])
    output = ran.stdout + ran.stderr
    assert ran.returncode in (0, 1), output  # retirement exits 1 for unexplained entries
    assert "does not exist" not in output and "no migrated groups" not in output, output


def test_named_schemas_win_and_a_missing_cache_entries_says_which_setting_to_change(
    a_build_followed_by_other_dbt_commands: Shell,
) -> None:
    ran = a_build_followed_by_other_dbt_commands.run(
        [*HARNESS, "validate", "--target", "prod", "--schema", "mig", "--source-schema", "nowhere"]
    )
    assert ran.returncode == 2, ran.stdout + ran.stderr
    error = ran.stderr.strip()
    assert error.startswith("error: The legacy table nowhere.cache_entries does not exist in")
    assert "--source-schema (or DBT_SOURCE_SCHEMA)" in error
    assert "load-sample" not in error  # never advice to load sample rows into production
    assert len(error.splitlines()) == 1 and "Traceback" not in error


TABLE_COMMANDS = ["validate", "query", "retirement", "backup", "rollback"]


@pytest.mark.parametrize("command", TABLE_COMMANDS)
def test_every_command_that_reads_the_tables_takes_schema_and_source_schema(
    command: str,
) -> None:
    shown = subprocess.run(
        [*HARNESS, command, "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True,
        check=False, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "--schema SCHEMA" in shown.stdout and "--source-schema SOURCE_SCHEMA" in shown.stdout


def test_without_a_recorded_build_the_default_is_said(pg_server: PgServer, tmp_path: Path) -> None:
    """A database nobody built in: the command says where it looked and why there."""
    name = f"t_find_none_{uuid.uuid4().hex[:8]}"
    database = pg_server.recreate_database(name)
    try:
        ran = Shell(database, tmp_path, tmp_path / "unused.yml").run(
            [*HARNESS, "query", "etf", "SPY", "--target", "prod"]
        )
    finally:
        pg_server.drop_database(name)
    assert ran.returncode == 2
    assert "There is no public.definition_groups table" in ran.stderr
    assert "no build of PROD recorded in this database and no DBT_SCHEMA" in ran.stderr
