"""One front door: a company's CI keeps its legacy data in schema `legacy`, builds into schema
`mig` with target `prod`, and mixes plain dbt with the harness — after a first build that
failed against the wrong database.  Every command then finds the right tables, or says exactly
where it looked (validation/targets.py)."""

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
import yaml
from psycopg import sql
from support.databases import PROJECT_ROOT, PgServer
from support.legacy_cache import LegacyCache, small_cache

from validation.validate import EXPECTATIONS_DIR

# the harness's own behaviour, the same on every server: the PostgreSQL 15 suite runs it
pytestmark = pytest.mark.one_server

DBT = str(Path(sys.executable).parent / "dbt")
HARNESS = [sys.executable, "-m", "validation"]
VARS = json.dumps({"source_schema": "legacy"})


@dataclass(frozen=True)
class Company:
    right: dict[str, str]  # PG* of the database that holds legacy.cache_entries
    wrong: dict[str, str]  # PG* of another database, where the first build failed
    work: Path
    expectations: Path

    def run(
        self, command: list[str], database: Mapping[str, str], **extra: str
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBT_"))}
        env |= {**database, "DO_NOT_TRACK": "1", "DBT_TARGET_PATH": str(self.work / "target")}
        env |= {"DBT_LOG_PATH": str(self.work / "logs"), **extra}
        return subprocess.run(
            command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip


@pytest.fixture(scope="module")
def company_ci_after_a_failed_build_elsewhere(
    pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Company]:
    """Legacy rows in `legacy`, a failed harness build against the wrong database, then a
    plain `dbt build --target prod` into `mig` against the right one."""
    tag = uuid.uuid4().hex[:8]
    right = pg_server.recreate_database(f"t_company_{tag}")
    wrong = pg_server.recreate_database(f"t_company_{tag}_wrong")
    with pg_server.connect(right["PGDATABASE"], autocommit=True) as conn:
        small_cache(LegacyCache(conn).create(), "PROD")
        conn.execute("create schema legacy")
        conn.execute(sql.SQL("alter table public.cache_entries set schema legacy"))
    work = tmp_path_factory.mktemp("company")
    spec = yaml.safe_load((EXPECTATIONS_DIR / "test.yml").read_text(encoding="utf-8"))
    spec["environment"] = "PROD"  # the compact cache's figures, for PROD
    expectations = work / "prod_compact.yml"
    expectations.write_text(yaml.safe_dump(spec), encoding="utf-8")
    company = Company(right, wrong, work, expectations)

    failed = company.run(
        [*HARNESS, "build", "--target", "prod", "--vars", VARS], wrong, DBT_SCHEMA="mig"
    )
    assert failed.returncode != 0, "the build against the wrong database should fail"
    assert (work / "target" / "prod" / "manifest.json").is_file()
    built = company.run([DBT, "build", "--target", "prod", "--vars", VARS], right, DBT_SCHEMA="mig")
    assert built.returncode == 0, built.stdout + built.stderr
    try:
        yield company
    finally:
        pg_server.drop_database(right["PGDATABASE"])
        pg_server.drop_database(wrong["PGDATABASE"])


def test_validate_finds_the_plain_dbt_build_not_the_failed_one(
    company_ci_after_a_failed_build_elsewhere: Company,
) -> None:
    company = company_ci_after_a_failed_build_elsewhere
    ran = company.run(
        [*HARNESS, "validate", "--target", "prod", "--timings", "report",
         "--expectations", str(company.expectations)],
        company.right,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "tables: the newest build of PROD in this database" in ran.stdout
    assert "in mig.migration_run_log; cache_entries in legacy" in ran.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["query", "etf", "SPY", "--target", "prod"],
        ["retirement", "--target", "prod"],
    ],
    ids=["query", "retirement"],
)
def test_the_operators_commands_find_mig_without_dbt_schema(
    company_ci_after_a_failed_build_elsewhere: Company, command: list[str]
) -> None:
    company = company_ci_after_a_failed_build_elsewhere
    ran = company.run([*HARNESS, *command], company.right)
    output = ran.stdout + ran.stderr
    assert ran.returncode in (0, 1), output  # retirement exits 1 for unexplained entries
    assert "does not exist" not in output and "no migrated groups" not in output, output


def test_backup_finds_both_the_tables_and_the_legacy_schema(
    company_ci_after_a_failed_build_elsewhere: Company, tmp_path: Path
) -> None:
    company = company_ci_after_a_failed_build_elsewhere
    out = tmp_path / "backups"
    ran = company.run([*HARNESS, "backup", "--target", "prod", "--out", str(out)], company.right)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    dump = next(
        line.split(":", 1)[1].strip()
        for line in ran.stdout.splitlines()
        if line.startswith("backup:")
    )
    assert Path(dump).parent == out  # --out: not the checkout's backups/
    meta = json.loads(Path(dump + ".json").read_text())
    assert (meta["schema"], meta["source_schema"]) == ("mig", "legacy")
    assert meta["rows"]["definition_groups"] > 0 and meta["rows"]["cache_entries"] > 0


def test_against_a_database_without_the_tables_the_error_says_where_it_looked(
    company_ci_after_a_failed_build_elsewhere: Company,
) -> None:
    company = company_ci_after_a_failed_build_elsewhere
    ran = company.run([*HARNESS, "query", "etf", "SPY", "--target", "prod"], company.wrong)
    assert ran.returncode == 2
    error = ran.stderr
    # the failed build's manifest names mig, but no build is recorded in that database
    assert "There is no public.definition_groups table" in error
    assert company.wrong["PGDATABASE"] in error
    assert "no build of PROD recorded in this database and no DBT_SCHEMA" in error
    assert "Traceback" not in error


def test_several_targets_build_in_one_call(
    company_ci_after_a_failed_build_elsewhere: Company, pg_server: PgServer
) -> None:
    """`build --target prod,test` runs both in one process, each under its run lock."""
    company = company_ci_after_a_failed_build_elsewhere
    with pg_server.connect(company.right["PGDATABASE"], autocommit=True) as conn:
        conn.execute(
            "insert into legacy.cache_entries (type, name, key, value, environment)"
            " select type, name, key, value, 'TEST' from legacy.cache_entries"
            " where environment = 'PROD'"
        )
    ran = company.run(
        [*HARNESS, "build", "--target", "prod,test", "--vars", VARS],
        company.right,
        DBT_SCHEMA="mig",
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.count("(in this process)") == 2
    with pg_server.connect(company.right["PGDATABASE"]) as conn:
        environments = conn.execute(
            "select array_agg(distinct environment order by environment) from mig.definition_groups"
        ).fetchone()
    assert environments == (["PROD", "TEST"],)
