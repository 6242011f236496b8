"""A company's database set up as the README says (its DBA SQL, the legacy table in schema
`legacy`), and its people's shells: for the tests that run the README's and the runbooks'
blocks as written.  Only names change: the database, the roles and the backup directory are
each test's own (and dbt's target and log directories, so the two servers' suites never share
them)."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from support.databases import PgServer
from support.shell import readme_block, run_command, user_environment
from validation import sample

# the README's names; a runbook may name more roles (extra_roles below)
README_NAMES = ("stocks", "migrator", "reader")


@dataclass(frozen=True)
class Company:
    """A database set up by the README's DBA SQL, and how its people's shells look."""

    database: str
    names: Mapping[str, str]  # the README's (and a runbook's) names → this test's
    settings: Mapping[str, str]  # the admin's PG* settings
    backups: Path
    work: Path

    def as_written(self, line: str) -> str:
        """A line of the README or a runbook with this test's names, and the files it writes
        (backups/, a --json report) in this test's directory rather than the checkout."""
        line = self.pattern().sub(lambda m: self.names[m[1]], line)
        line = re.sub(r"--json (?!/)(\S+)", lambda m: f"--json {self.work}/{m[1]}", line)
        return line.replace("backups/", f"{self.backups}/")

    def pattern(self) -> re.Pattern[str]:
        return re.compile(r"\b(" + "|".join(map(re.escape, self.names)) + r")\b")

    def shell(self, line: str) -> subprocess.CompletedProcess[str]:
        """One README line in a shell of the migration role, from the checkout."""
        env = user_environment(
            {
                **self.settings,
                "PGUSER": self.names["migrator"],
                "DBT_SCHEMA": "public",
                "DBT_SOURCE_SCHEMA": "legacy",
                "DBT_READER_ROLE": self.names["reader"],
            },
            self.work,
        )
        return run_command(
            ["bash", "-c", "set -o pipefail\n" + self.as_written(line)], env, timeout=900
        )


@pytest.fixture
def a_company_set_up_as_the_readme_says(
    pg_server: PgServer, tmp_path: Path
) -> Iterator[tuple[Company, psycopg.Connection]]:
    """The sample's PROD entries in legacy.cache_entries of a database of its own, and the
    README's DBA SQL run once with this company's names."""
    with company_database(pg_server, tmp_path) as set_up:
        yield set_up


@contextmanager
def company_database(
    pg_server: PgServer, work: Path, extra_roles: Sequence[str] = ()
) -> Iterator[tuple[Company, psycopg.Connection]]:
    """The README's DBA SQL run once in a database of its own with the sample's PROD entries;
    ``extra_roles`` are more roles a runbook names (created by it or by the test), each with
    a name of this test's own, all dropped at the end."""
    tag = uuid.uuid4().hex[:8]
    database = f"t_company_{tag}"
    names = {"stocks": database} | {
        role: f"{role}_{tag}" for role in (*README_NAMES[1:], *extra_roles)
    }
    settings = pg_server.recreate_database(database)
    admin = pg_server.connect(database, autocommit=True)
    admin.execute("create schema legacy")
    sample.load_sample(admin, schema="legacy", environments=("PROD",))
    company = Company(database, names, settings, work / "backups", work)
    admin.execute(sql.SQL(company.as_written(readme_block("dba-sql"))))  # type: ignore[arg-type]
    company.backups.mkdir()
    try:
        yield company, admin
    finally:
        admin.close()
        pg_server.drop_database(database)
        with pg_server.connect(autocommit=True) as conn:
            for role in list(names.values())[1:]:
                conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
