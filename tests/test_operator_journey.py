"""The README's journey ("The journey, end to end"), run as a data engineer runs it: a DBA's
database with the legacy table in schema `legacy` and the README's SQL run once; then each
line of the README's two blocks, as written, in a shell of its own from the checkout -- the
migration role's block (build, validate, every query form, docs generate, source freshness,
backup, rollback, restore, build, validate, a --full-refresh rebuild), then the reader's
(validate, query, freshness, retirement).  Only names change: the database, the two roles and
the backup directory are this test's own (and dbt's target and log directories, so that the
two servers' suites never share them).  After rollback → restore → build, the analyst tables,
the history and the migration's rows must be those of the first build."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from support.company import Company
from support.equivalence import environment_part
from support.history import history_as_of, last_run_time, tables_state
from support.legacy_cache import published
from support.shell import readme_block

NAMES = re.compile(r"\b(stocks|migrator|reader)\b")

# What analysts read, without the ids and stamps a rebuild may change
ANALYST_ROWS_SQL = {
    "symbol_memberships": "select symbol, etfs, themes, sector, industry, custom_groups,"
    " group_count from public.symbol_memberships where environment = 'PROD' order by symbol",
    "group_summary": "select group_id, type, name, member_count, weighted_member_count,"
    " total_weight from public.group_summary where environment = 'PROD' order by group_id",
    "etf_overlap": "select etf, other_etf, shared_symbols, etf_holdings, other_etf_holdings"
    " from public.etf_overlap where environment = 'PROD' order by etf, other_etf",
    "group_holdings": "select group_id, type, name, member_count, symbols, weights, positions"
    " from public.group_holdings where environment = 'PROD' order by group_id",
}


def readme_blocks() -> dict[str, list[str]]:
    """{role: the lines of its journey block}, blank lines left out."""
    return {
        role: [line for line in readme_block(f"journey-{role}", "sh").splitlines() if line.strip()]
        for role in ("migrator", "reader")
    }


def _what_analysts_and_the_history_see(conn: psycopg.Connection) -> dict[str, Any]:
    at = last_run_time(conn, "PROD")
    groups, memberships = history_as_of(conn, at)
    held_groups, held_memberships = tables_state(conn)
    return {
        **{model: conn.execute(query).fetchall() for model, query in ANALYST_ROWS_SQL.items()},
        "history answers what the tables hold": (
            {k: v for k, v in groups.items() if k[0] == "PROD"}
            == {k: v for k, v in held_groups.items() if k[0] == "PROD"}
            and {k: v for k, v in memberships.items() if k[0] == "PROD"}
            == {k: v for k, v in held_memberships.items() if k[0] == "PROD"}
        ),
        "the migration's rows, with their ids": environment_part(published(conn), "PROD"),
    }


def test_the_readmes_journey_works_line_by_line_as_written(
    a_company_set_up_as_the_readme_says: tuple[Company, psycopg.Connection],
):
    company, admin = a_company_set_up_as_the_readme_says
    blocks = readme_blocks()
    first_build: dict[str, Any] = {}
    restored = False
    for role in ("migrator", "reader"):
        for line in blocks[role]:
            ran = company.shell(line)
            assert ran.returncode == 0, (
                f"README line failed (exit {ran.returncode}): {line}\n"
                f"{ran.stdout[-3000:]}\n{ran.stderr[-2000:]}"
            )
            if " query " in line and " changes " not in line:  # no change yet: no rows
                assert ran.stdout.strip() and "(no rows)" not in ran.stdout, (line, ran.stdout)
            if " validate " in line:
                assert "Result: PASS" in ran.stdout, (line, ran.stdout[-3000:])
            if "dbt build" in line and not first_build:
                first_build = _what_analysts_and_the_history_see(admin)
                assert first_build["history answers what the tables hold"]
                assert all(first_build[model] for model in ANALYST_ROWS_SQL), first_build
            restored = restored or " restore " in line
            if restored and "dbt build" in line and "--full-refresh" not in line:
                # rollback → restore → build: what the first build gave, ids included
                assert _what_analysts_and_the_history_see(admin) == first_build
    assert restored, "the README's journey lost its restore"
