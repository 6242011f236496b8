"""Operating the migration: backup / restore, rollback, source freshness, the retirement
report and the run log — each against a real PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from support.dbt_project import DbtProject
from support.legacy_cache import LegacyCache, cache_fingerprint, published, small_cache

from validation import operations
from validation.cli import main
from validation.errors import UserFacingError

SLICE_SQL = """
select g.*, m.* from definition_groups g left join group_memberships m on m.group_id = g.id
where g.environment = %s order by g.id, m.id
"""


def build_once(project: DbtProject) -> None:
    with project.connect() as conn:
        cache = LegacyCache(conn).create()
        for environment in ("DEFAULT", "TEST", "PROD"):
            small_cache(cache, environment)
            project.build(environment.lower())


@pytest.fixture
def three_environments_built(
    module_copy: psycopg.Connection, dbt_project: DbtProject, monkeypatch: pytest.MonkeyPatch
) -> psycopg.Connection:
    """DEFAULT, TEST and PROD loaded with the compact cache and built (a copy of the module's
    template, build_once); PG* point at them."""
    for name, value in dbt_project.settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DBT_SCHEMA", "public")
    return module_copy


def _slice(conn: psycopg.Connection, environment: str) -> list[tuple[object, ...]]:
    return conn.execute(SLICE_SQL, (environment,)).fetchall()


def test_backup_then_damage_then_restore_gives_back_identical_rows(
    dbt_project: DbtProject, three_environments_built: psycopg.Connection, tmp_path: Path
):
    conn = three_environments_built
    before = _slice(conn, "PROD")
    others = (_slice(conn, "DEFAULT"), _slice(conn, "TEST"))
    # the history models' rows go with the tables they describe
    history = {
        table: conn.execute(
            sql.SQL("select count(*) from {} where environment = 'PROD'").format(
                sql.Identifier(table)
            )
        ).fetchone()[0]  # type: ignore[index]
        for table in operations.HISTORY_TABLES
    }
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    assert made.rows["definition_groups"] == 12 and made.path.stat().st_size > 0
    conn.execute("delete from definition_groups where environment = 'PROD' and type = 'ETF'")
    conn.execute(
        "update group_memberships set weight = 0.5 where group_id in"
        " (select id from definition_groups where environment = 'PROD')"
    )

    restored = operations.restore(dbt_project.settings, made.path)

    memberships = sum(1 for row in before if row[-1] is not None)  # left join: NULL = none
    ledger = {"migration_ledger_groups": 12, "migration_ledger_memberships": memberships}
    assert restored == {
        "definition_groups": 12,
        "group_memberships": memberships,
        **ledger,
        **history,
    }
    assert _slice(conn, "PROD") == before
    assert (_slice(conn, "DEFAULT"), _slice(conn, "TEST")) == others
    next_id = conn.execute("select nextval('definition_groups_id_seq')").fetchone()
    highest = conn.execute("select max(id) from definition_groups").fetchone()
    assert next_id is not None and highest is not None and next_id[0] > highest[0]


def test_a_damaged_backup_is_refused_and_nothing_changes(
    dbt_project: DbtProject,
    three_environments_built: psycopg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    conn = three_environments_built
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    data = bytearray(made.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    made.path.write_bytes(bytes(data))
    conn.execute("delete from definition_groups where environment = 'PROD' and name = 'SPY'")
    damaged_state = _slice(conn, "PROD")

    with pytest.raises(UserFacingError, match="does not match its checksum"):
        operations.restore(dbt_project.settings, made.path)
    assert main(["restore", str(made.path), "--yes"]) == 2

    assert "refusing to restore it" in capsys.readouterr().err
    assert _slice(conn, "PROD") == damaged_state


def test_a_backup_whose_metadata_names_another_schema_is_refused(
    dbt_project: DbtProject, three_environments_built: psycopg.Connection, tmp_path: Path
):
    """restore drops and recreates the scratch schema the metadata names: an edited .json
    naming `public` must never get that far, even with a .sha256 rewritten to match it."""
    conn = three_environments_built
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    meta_path = made.path.with_name(made.path.name + ".json")
    meta = json.loads(meta_path.read_text())
    meta["snapshot_schema"] = "public"
    meta_path.write_text(json.dumps(meta))
    dump_line = made.checksum_path.read_text().splitlines()[0]
    digest = hashlib.sha256(meta_path.read_bytes()).hexdigest()
    made.checksum_path.write_text(f"{dump_line}\n{digest}  {meta_path.name}\n")
    before = _slice(conn, "PROD")

    with pytest.raises(UserFacingError, match="not one a backup of its environment makes"):
        operations.restore(dbt_project.settings, made.path)

    assert _slice(conn, "PROD") == before
    assert conn.execute("select to_regclass('public.definition_groups')").fetchone() != (None,)


def test_restore_says_what_it_replaces_before_it_asks(
    dbt_project: DbtProject,
    three_environments_built: psycopg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    before = _slice(three_environments_built, "PROD")

    assert main(["restore", str(made.path)]) == 2  # no terminal, no --yes: refused

    out = capsys.readouterr()
    assert "restore into PROD in schema public" in out.out and "would replace" in out.out
    assert re.search(
        r"^  definition_groups +delete +12 PROD rows the migration wrote, keep +0,"
        r" insert +12 from the backup$",
        out.out,
        re.M,
    ), out.out
    plan = [line for line in out.out.splitlines() if line.endswith("from the backup")]
    assert len(plan) >= 4 and len({line.index(" delete ") for line in plan}) == 1, plan
    assert "rerun with --yes" in out.err
    assert _slice(three_environments_built, "PROD") == before
    # the dump was read into a scratch schema to make the plan; refusing dropped it
    assert three_environments_built.execute(
        "select count(*) from pg_namespace where nspname like 'sprint59_backup_%'"
    ).fetchone() == (0,)


def test_rollback_of_test_leaves_other_environments_and_the_legacy_table_alone(
    three_environments_built: psycopg.Connection, capsys: pytest.CaptureFixture[str]
):
    conn = three_environments_built
    others = (_slice(conn, "DEFAULT"), _slice(conn, "PROD"))
    legacy = cache_fingerprint(conn)

    assert main(["rollback", "--target", "test", "--yes"]) == 0

    out = capsys.readouterr().out
    assert "definition_groups" in out and "cache_entries is not touched" in out
    assert _slice(conn, "TEST") == []
    assert conn.execute(
        "select count(*) from symbol_memberships where environment = 'TEST'"
    ).fetchone() == (0,)
    assert (_slice(conn, "DEFAULT"), _slice(conn, "PROD")) == others
    assert cache_fingerprint(conn) == legacy


def test_rollback_without_a_terminal_needs_yes(
    three_environments_built: psycopg.Connection, capsys: pytest.CaptureFixture[str]
):
    assert main(["rollback", "--target", "prod"]) == 2
    assert "rerun with --yes" in capsys.readouterr().err
    assert _slice(three_environments_built, "PROD") != []


@pytest.mark.parametrize(("age_hours", "status"), [(1, "pass"), (72, "warn"), (400, "error")])
def test_source_freshness_follows_the_last_legacy_write(
    dbt_project: DbtProject, age_hours: int, status: str
):
    conn = dbt_project.connect()
    small_cache(LegacyCache(conn).create(), "DEFAULT")
    conn.execute(
        "update cache_entries set created_at = now() - make_interval(hours => %s),"
        " updated_at = null",
        (age_hours,),
    )

    result = dbt_project.invoke("source freshness", expect_success=status != "error")

    sources = [r for r in result.result.results if r.node.resource_type == "source"]
    assert [str(r.status) for r in sources] == [status]


def test_retirement_report_flags_an_unexplained_difference(
    dbt_project: DbtProject,
    three_environments_built: psycopg.Connection,
    capsys: pytest.CaptureFixture[str],
):
    conn = three_environments_built
    assert main(["retirement", "--target", "prod"]) == 0
    capsys.readouterr()
    conn.execute(
        "delete from group_memberships where symbol = 'NVDA' and group_id ="
        " (select id from definition_groups where environment = 'PROD' and name = 'SPY')"
    )

    assert main(["retirement", "--target", "prod"]) == 1

    out = capsys.readouterr().out
    assert "etf_holdings SPY (PROD): 1 of 4 elements are neither memberships nor exceptions" in out
    assert "1 entries differ without an explanation" in out


def _diff(before: dict, after: dict) -> tuple[int, int, int]:
    inserted = len(after.keys() - before.keys())
    deleted = len(before.keys() - after.keys())
    updated = sum(1 for k in before.keys() & after.keys() if before[k] != after[k])
    return inserted, updated, deleted


def test_the_run_log_counts_what_a_run_changed(
    dbt_project: DbtProject, three_environments_built: psycopg.Connection
):
    conn = three_environments_built
    cache = LegacyCache(conn)
    before = published(conn)
    cache.replace("etf_holdings", "XLE", {"holdings": ["XOM", "COP", "EOG"]}, "PROD")
    cache.replace(
        "etf_holdings", "QQQ",
        {"holdings": [{"symbol": "AAPL", "weight": 0.3}, {"symbol": "MSFT", "weight": 0.1},
                      {"ticker": "NVDA", "weight_pct": 8.5}],
         "last_updated": "2025-12-06T10:00:00"},
        "PROD",
    )  # fmt: skip
    cache.remove("theme_definition", "crypto_miners", "PROD")
    cache.add("theme_definition", "uranium", "Uranium", {"symbols": ["CCJ"]}, "PROD")
    started = datetime.now(UTC).replace(tzinfo=None)

    dbt_project.build("prod")

    after = published(conn)
    prod = {k: v for k, v in after.groups.items() if k[0] == "PROD"}
    prod_before = {k: v for k, v in before.groups.items() if k[0] == "PROD"}
    members = {k: v for k, v in after.memberships.items() if k[0] == "PROD"}
    members_before = {k: v for k, v in before.memberships.items() if k[0] == "PROD"}
    log = conn.execute(
        "select groups_inserted, groups_updated, groups_deleted, memberships_inserted,"
        " memberships_updated, memberships_deleted, exception_errors, exception_warnings"
        " from migration_run_log where environment = 'PROD' and run_started_at >= %s",
        (started,),
    ).fetchall()
    exceptions = _exception_counts(conn, "prod")
    assert log == [(*_diff(prod_before, prod), *_diff(members_before, members), *exceptions)]
    assert log[0][:3] == (1, 2, 1)  # uranium; XLE and QQQ; crypto_miners


def _exception_counts(conn: psycopg.Connection, environment: str) -> tuple[int, int]:
    row = conn.execute(
        sql.SQL(
            "select count(*) filter (where severity = 'error'),"
            " count(*) filter (where severity = 'warning') from {}"
        ).format(sql.Identifier(f"public_ops_{environment}", "migration_exceptions"))
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_a_run_that_skips_the_exceptions_model_logs_no_exception_counts(
    dbt_project: DbtProject, three_environments_built: psycopg.Connection
):
    conn = three_environments_built
    LegacyCache(conn).add("theme_definition", "lithium", "Lithium", {"symbols": ["ALB"]}, "PROD")
    started = datetime.now(UTC).replace(tzinfo=None)

    dbt_project.invoke(
        "run",
        target="prod",
        args=("--exclude", "migration_exceptions", "cache_entry_reconciliation+"),
    )

    log = conn.execute(
        "select groups_inserted, exception_errors, exception_warnings from migration_run_log"
        " where environment = 'PROD' and run_started_at >= %s",
        (started,),
    ).fetchall()
    # published, but the exceptions were not counted by this run: NULL, not stale figures
    assert log == [(1, None, None)]
