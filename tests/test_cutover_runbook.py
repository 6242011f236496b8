"""The cut-over runbook (docs/cutover.md), walked as written: a company's database set up as
the README says, the application's two roles as the runbook shows them today, then each
block in its order -- expand, switch one reader, watch, the way back, switch again, contract
(freeze the legacy table), and its way back.  At each step the application's own query, run
as its read role, must answer from where the runbook says and give the legacy value."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from support.company import Company, company_database
from support.databases import PgServer
from support.shell import readme_block

from validation.connection import PROJECT_ROOT

RUNBOOK = PROJECT_ROOT / "docs" / "cutover.md"
APPLICATION_ROLES = ("orders_app", "orders_feed")


def runbook(marker: str, language: str = "sql") -> str:
    return readme_block(marker, language, document=RUNBOOK)


@pytest.fixture
def a_company_whose_application_reads_the_legacy_table(
    pg_server: PgServer, tmp_path: Path
) -> Iterator[tuple[Company, psycopg.Connection]]:
    """The README's company with the sample's PROD entries, and the application's read and
    feed roles set up as the runbook shows them before the cut-over."""
    with company_database(pg_server, tmp_path, extra_roles=APPLICATION_ROLES) as (company, admin):
        run_sql(company, admin, "cutover-application-today")
        yield company, admin


def run_sql(company: Company, admin: psycopg.Connection, marker: str) -> None:
    """A runbook SQL block, as a DBA runs it."""
    admin.execute(sql.SQL(company.as_written(runbook(marker))))  # type: ignore[arg-type]


def run_shell(company: Company, marker: str) -> list[str]:
    """Each line of a runbook shell block as the migration's role; every one must exit 0."""
    outputs = []
    for line in runbook(marker, "sh").splitlines():
        if not line.strip():
            continue
        ran = company.shell(line)
        assert ran.returncode == 0, (
            f"runbook line failed (exit {ran.returncode}): {line}\n"
            f"{ran.stdout[-3000:]}\n{ran.stderr[-2000:]}"
        )
        outputs.append(ran.stdout)
    return outputs


def as_role(company: Company, role: str) -> psycopg.Connection:
    """A new session of one of the company's roles (a role's search_path applies to new
    sessions)."""
    settings = company.settings
    return psycopg.connect(
        host=settings["PGHOST"],
        port=settings["PGPORT"],
        dbname=company.database,
        user=company.names[role],
        autocommit=True,
    )


def application_read(company: Company) -> tuple[str, Any]:
    """The application's query, as its read role runs it: (the schema `cache_entries`
    resolved to, the value)."""
    with as_role(company, "orders_app") as conn:
        schema = conn.execute(
            "select n.nspname from pg_class as c join pg_namespace as n on n.oid = c.relnamespace"
            " where c.oid = 'cache_entries'::regclass"
        ).fetchone()
        rows = conn.execute(runbook("cutover-application-read")).fetchall()
    assert schema and len(rows) == 1, rows
    return schema[0], rows[0][0]


def feed_can_write(company: Company) -> bool:
    """Whether the feed role may still change the legacy table (its UPDATE is rolled back)."""
    with as_role(company, "orders_feed") as conn:
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("update legacy.cache_entries set updated_at = updated_at where false")
        except psycopg.errors.InsufficientPrivilege:
            return False
    return True


def test_the_cutover_runbook_works_block_by_block_with_a_way_back_at_each_step(
    a_company_whose_application_reads_the_legacy_table: tuple[Company, psycopg.Connection],
) -> None:
    company, admin = a_company_whose_application_reads_the_legacy_table
    legacy_schema, legacy_value = application_read(company)
    assert legacy_schema == "legacy"

    # 1. expand
    run_shell(company, "cutover-expand")

    # 2. switch one reader: same query, served by the compatibility relation, same value
    run_sql(company, admin, "cutover-switch")
    assert application_read(company) == ("public_compat_prod", legacy_value)

    # 3. watch: green, the JSON report says so
    run_shell(company, "cutover-watch")
    report = json.loads((company.work / "shadow-prod.json").read_text(encoding="utf-8"))
    assert report["unexplained"] == 0 and report["exit_code"] == 0, report

    # the way back, then the switch again
    run_sql(company, admin, "cutover-switch-back")
    assert application_read(company) == ("legacy", legacy_value)
    run_sql(company, admin, "cutover-switch")
    assert application_read(company) == ("public_compat_prod", legacy_value)

    # 4. contract: a backup, retirement green, the feed's writes taken away; a build then
    # has nothing to do and the reader still reads the same value
    assert feed_can_write(company)
    run_shell(company, "cutover-contract")
    assert list(company.backups.glob("*.dump")), "the contract step's backup is missing"
    run_sql(company, admin, "cutover-contract-sql")
    assert not feed_can_write(company)
    built = company.shell(".venv/bin/sprint59 build --target prod")
    assert built.returncode == 0 and "nothing changed since run" in built.stdout, built.stdout
    assert application_read(company) == ("public_compat_prod", legacy_value)

    # and its way back
    run_sql(company, admin, "cutover-contract-back")
    assert feed_can_write(company)
