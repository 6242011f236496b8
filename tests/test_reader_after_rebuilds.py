"""A reader keeps reading through rebuilds.  A DBA runs the README's SQL once (two login roles,
the legacy schema's grants); the migration user builds with DBT_READER_ROLE naming the
reader, then rebuilds -- incrementally and with --full-refresh, which replace the operators'
views and the exceptions table -- and after each build the reader validates, queries and
checks retirement.  A role the build was not told about gets a one-line permission error
naming each object and privilege, with its own exit code (4), never a data failure."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg import sql
from support.databases import PgServer
from support.legacy_cache import LegacyCache, small_cache
from support.shell import readme_block, run_command, user_environment

from validation.errors import PermissionProblem

HARNESS = [sys.executable, "-m", "validation"]


def dba_sql_from_the_readme() -> str:
    """The README's 'once, by a DBA' SQL block, as a user copies it."""
    return readme_block("dba-sql")


@dataclass(frozen=True)
class Company:
    database: str
    settings: Mapping[str, str]  # the admin's
    migrator: str
    reader: str
    stranger: str  # may connect, nothing else
    work: Path

    def run(self, user: str, command: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
        settings = {**self.settings, "PGUSER": user, **extra}
        return run_command(command, user_environment(settings, self.work / user))

    def build(self, *options: str) -> None:
        built = self.run(
            self.migrator,
            [*HARNESS, "build", "--target", "test", *options],
            DBT_SCHEMA="mig", DBT_SOURCE_SCHEMA="legacy", DBT_READER_ROLE=self.reader,
        )  # fmt: skip
        assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]


@pytest.fixture(scope="module")
def a_company_set_up_by_the_readmes_dba_sql(
    pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Company]:
    """TEST's legacy rows in legacy.cache_entries, and the README's DBA SQL run once with this
    company's names; the migration user builds TEST into `mig` as the README says."""
    tag = uuid.uuid4().hex[:8]
    database = f"t_reader_{tag}"
    migrator, reader, stranger = f"migrator_{tag}", f"reader_{tag}", f"stranger_{tag}"
    settings = pg_server.recreate_database(database)
    names = {"stocks": database, "migrator": migrator, "reader": reader}
    named = r"\b(stocks|migrator|reader)\b"
    script = re.sub(named, lambda m: names[m[1]], dba_sql_from_the_readme())
    with pg_server.connect(database, autocommit=True) as admin:
        small_cache(LegacyCache(admin).create(), "TEST")
        admin.execute("create schema legacy")
        admin.execute("alter table public.cache_entries set schema legacy")
        admin.execute(sql.SQL("revoke create on schema public from public"))
        admin.execute(sql.SQL(script))  # type: ignore[arg-type]
        admin.execute(sql.SQL("create role {} login").format(sql.Identifier(stranger)))
    company = Company(database, settings, migrator, reader, stranger, tmp_path_factory.mktemp("r"))
    try:
        company.build()
        yield company
    finally:
        pg_server.drop_database(database)
        with pg_server.connect(autocommit=True) as admin:
            for role in (migrator, reader, stranger):
                admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


READER_COMMANDS = {
    "validate": [*HARNESS, "validate", "--target", "test", "--timings", "off"],
    "query": [*HARNESS, "query", "etf", "SPY", "--target", "test"],
    "query --as-of": [*HARNESS, "query", "etf", "SPY", "--target", "test", "--as-of", "2999-01-01"],
    "retirement": [*HARNESS, "retirement", "--target", "test"],
}
REBUILDS = {"first build": (), "incremental rebuild": (), "--full-refresh": ("--full-refresh",)}


@pytest.fixture(scope="module")
def what_the_reader_saw_after_each_build(
    a_company_set_up_by_the_readmes_dba_sql: Company,
) -> dict[tuple[str, str], subprocess.CompletedProcess[str]]:
    company = a_company_set_up_by_the_readmes_dba_sql
    seen = {}
    for rebuild, options in REBUILDS.items():
        if rebuild != "first build":
            company.build(*options)
        for label, command in READER_COMMANDS.items():
            seen[rebuild, label] = company.run(company.reader, command)
    return seen


@pytest.mark.parametrize("command", list(READER_COMMANDS))
@pytest.mark.parametrize("rebuild", list(REBUILDS))
def test_the_reader_still_reads_after_the_rebuild(
    what_the_reader_saw_after_each_build: dict[tuple[str, str], subprocess.CompletedProcess[str]],
    rebuild: str,
    command: str,
) -> None:
    ran = what_the_reader_saw_after_each_build[rebuild, command]
    output = ran.stdout + ran.stderr
    assert "permission denied" not in output.lower() and "lacks" not in output, output
    # retirement exits 1 when the compact cache has an unexplained entry; never for privileges
    assert ran.returncode in ((0, 1) if command == "retirement" else (0,)), output
    if command == "validate":
        assert "Result: PASS" in ran.stdout, output


def test_a_role_the_build_was_not_told_about_is_told_what_it_lacks(
    a_company_set_up_by_the_readmes_dba_sql: Company,
) -> None:
    company = a_company_set_up_by_the_readmes_dba_sql
    ran = company.run(
        company.stranger,
        [*HARNESS, "validate", "--target", "test", "--schema", "mig", "--source-schema", "legacy"],
    )
    error = ran.stderr.strip()
    assert ran.returncode == PermissionProblem.exit_code == 4, ran.stdout + ran.stderr
    assert error == (
        f"error: Role {company.stranger} lacks USAGE on schema mig, mig_ops_test, legacy, "
        "mig_compat_test and "
        "SELECT on mig.definition_groups, mig.group_memberships, "
        "mig_ops_test.migration_exceptions, legacy.cache_entries, mig.migration_ledger_groups, "
        "mig.migration_ledger_memberships, mig.symbol_memberships, mig.group_summary, "
        "mig.etf_overlap, mig.group_holdings, mig_compat_test.cache_entries; every build grants "
        "the migration's tables to it "
        f"when DBT_READER_ROLE={company.stranger} is set for the build, and the owner of "
        "cache_entries grants that once (README, 'Use your own PostgreSQL')."
    )


@pytest.mark.parametrize("command", [["query", "etf", "SPY"], ["retirement"]])
def test_without_the_run_log_a_role_is_told_it_may_not_read_it(
    a_company_set_up_by_the_readmes_dba_sql: Company, command: list[str]
) -> None:
    company = a_company_set_up_by_the_readmes_dba_sql
    ran = company.run(company.stranger, [*HARNESS, *command, "--target", "test"])
    assert ran.returncode == 4, ran.stdout + ran.stderr
    assert f"Role {company.stranger} may not read mig.migration_run_log" in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1 and "Traceback" not in ran.stderr
