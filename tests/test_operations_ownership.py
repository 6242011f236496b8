"""backup / restore / rollback touch only the rows the migration wrote (its ledger), restore
trusts nothing its checksum does not cover, and every failure leaves no change and no scratch
schema behind (docs/design.md §11)."""

from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from support.dbt_project import DbtProject
from support.equivalence import environment_part, foreign_rows
from support.history import history_as_of, last_run_time, tables_state
from support.ledger import copy_ledger_tables, ledger_ids
from support.legacy_cache import LegacyCache, published, small_cache, table_fingerprint

from validation import operations
from validation.cli import main
from validation.command import harness_command
from validation.errors import UserFacingError

SCRATCH_SCHEMAS_SQL = "select nspname from pg_namespace where nspname like 'sprint59_backup_%'"

# The analyst models' rows of one environment, without the ids and stamps a rebuild changes.
ANALYST_ROWS_SQL = {
    "symbol_memberships": "select symbol, etfs, themes, sector, industry, custom_groups,"
    " etf_count, theme_count, group_count from symbol_memberships where environment = %s"
    " order by symbol",
    "group_summary": "select type, name, description, member_count, weighted_member_count,"
    " weight_coverage, total_weight, source_type, source_key, source_name from group_summary"
    " where environment = %s order by type, name",
    "etf_overlap": "select * from etf_overlap where environment = %s order by etf, other_etf",
    "group_holdings": "select type, name, member_count, symbols, weights, positions"
    " from group_holdings where environment = %s order by type, name",
}


def build_once(project: DbtProject) -> None:
    """The module's template: the compact cache in DEFAULT, TEST and PROD, each built (every
    row is the migration's, in its ledger)."""
    with project.connect() as conn:
        cache = LegacyCache(conn).create()
        for environment in ("DEFAULT", "TEST", "PROD"):
            small_cache(cache, environment)
            project.build(environment.lower())


@pytest.fixture
def built_with_a_ledger(
    module_copy: psycopg.Connection, dbt_project: DbtProject, monkeypatch: pytest.MonkeyPatch
) -> psycopg.Connection:
    """DEFAULT, TEST and PROD built, every row in the build's ledger; PG* point at them."""
    for name, value in dbt_project.settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DBT_SCHEMA", "public")
    return module_copy


@dataclass(frozen=True)
class ForeignRows:
    """Rows of PROD that somebody else wrote, next to the migration's."""

    legacy_group: int  # a legacy script's group, metadata NULL
    legacy_membership: int  # its member
    hand_membership: int  # a membership added by hand to the migration's SPY
    spy: int


def _group_id(conn: psycopg.Connection, environment: str, name: str) -> int:
    row = conn.execute(
        "select id from definition_groups where environment = %s and name = %s",
        (environment, name),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _insert_group(conn: psycopg.Connection, name: str, environment: str, **columns: object) -> int:
    values = {"name": name, "type": "CUSTOM", "environment": environment, **columns}
    row = conn.execute(
        sql.SQL("insert into definition_groups ({}) values ({}) returning id").format(
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        ),
        tuple(values.values()),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _insert_membership(conn: psycopg.Connection, group_id: int, symbol: str) -> int:
    row = conn.execute(
        "insert into group_memberships (group_id, symbol) values (%s, %s) returning id",
        (group_id, symbol),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def foreign_rows_in_prod(built_with_a_ledger: psycopg.Connection) -> ForeignRows:
    conn = built_with_a_ledger
    legacy = _insert_group(conn, "legacy_watchlist", "PROD", description="kept by hand")
    spy = _group_id(conn, "PROD", "SPY")
    return ForeignRows(
        legacy, _insert_membership(conn, legacy, "IBM"), _insert_membership(conn, spy, "TSLA"), spy
    )


def _exists(conn: psycopg.Connection, table: str, row_id: int) -> bool:
    query = sql.SQL("select 1 from {} where id = %s").format(sql.Identifier(table))
    return conn.execute(query, (row_id,)).fetchone() is not None


def _owned_slice(conn: psycopg.Connection, environment: str) -> list[tuple[object, ...]]:
    """The environment's ledger groups and memberships, every column."""
    return conn.execute(
        "select g.*, m.* from definition_groups g"
        " join migration_ledger_groups lg on lg.group_id = g.id"
        " left join (group_memberships m join migration_ledger_memberships lm"
        " on lm.membership_id = m.id) on m.group_id = g.id"
        " where lg.environment = %s order by g.id, m.id",
        (environment,),
    ).fetchall()


def _everything(conn: psycopg.Connection) -> tuple[str, ...]:
    """Fingerprints of the two tables and of the ledger (any change shows)."""
    ledger = conn.execute(
        "select md5(coalesce(string_agg(t::text, '|' order by t.group_id), ''))"
        " from migration_ledger_groups t"
    ).fetchone()
    members = conn.execute(
        "select md5(coalesce(string_agg(t::text, '|' order by t.membership_id), ''))"
        " from migration_ledger_memberships t"
    ).fetchone()
    assert ledger is not None and members is not None
    return (
        table_fingerprint(conn, "definition_groups"),
        table_fingerprint(conn, "group_memberships"),
        str(ledger[0]),
        str(members[0]),
    )


def _scratch_schemas(conn: psycopg.Connection) -> list[str]:
    return [row[0] for row in conn.execute(SCRATCH_SCHEMAS_SQL).fetchall()]


def _analyst_rows(conn: psycopg.Connection, environment: str) -> dict[str, list[object]]:
    return {
        model: conn.execute(query, (environment,)).fetchall()  # type: ignore[arg-type]
        for model, query in ANALYST_ROWS_SQL.items()
    }


def _tables_like_publics(conn: psycopg.Connection, schema: str) -> None:
    """Another schema holding a compatible definition_groups / group_memberships, with their
    id sequences (as a build of that schema would have them)."""
    conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
    for table in ("definition_groups", "group_memberships"):
        conn.execute(
            sql.SQL("create table {} (like {} including all)").format(
                sql.Identifier(schema, table), sql.Identifier("public", table)
            )
        )
        conn.execute(
            sql.SQL("create sequence {}").format(sql.Identifier(schema, f"{table}_id_seq"))
        )


def _edit_metadata(dump: Path, **changes: object) -> None:
    meta_path = dump.with_name(dump.name + ".json")
    meta = json.loads(meta_path.read_text())
    meta.update(changes)
    meta_path.write_text(json.dumps(meta, indent=2))


# --- A: restore trusts only what the checksum covers -------------------------------------------


def test_metadata_edited_to_name_another_schema_is_refused_and_that_schema_is_untouched(
    dbt_project: DbtProject, built_with_a_ledger: psycopg.Connection, tmp_path: Path
):
    conn = built_with_a_ledger
    _tables_like_publics(conn, "other")
    conn.execute(
        "insert into other.definition_groups (name, type, environment) values"
        " ('somebody_elses', 'CUSTOM', 'PROD')"
    )
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    _edit_metadata(made.path, schema="other")
    theirs = conn.execute("select * from other.definition_groups").fetchall()
    before = _everything(conn)

    with pytest.raises(UserFacingError, match="metadata does not match its checksum"):
        operations.restore(dbt_project.settings, made.path)

    assert conn.execute("select * from other.definition_groups").fetchall() == theirs
    assert _everything(conn) == before
    assert _scratch_schemas(conn) == []


def test_metadata_edited_to_name_another_environment_is_refused_in_one_sentence(
    dbt_project: DbtProject,
    built_with_a_ledger: psycopg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    conn = built_with_a_ledger
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    _edit_metadata(made.path, environment="TEST")
    before = _everything(conn)

    assert main(["restore", str(made.path), "--yes"]) == 2

    err = capsys.readouterr().err
    assert "metadata does not match its checksum" in err and "duplicate key" not in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert _everything(conn) == before


def test_a_backup_made_before_its_metadata_was_checksummed_is_refused_saying_what_to_do(
    dbt_project: DbtProject, built_with_a_ledger: psycopg.Connection, tmp_path: Path
):
    """The earlier format: the .sha256 covers the dump alone, and the dump says nothing of
    which rows the migration wrote."""
    conn = built_with_a_ledger
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    dump_line = made.checksum_path.read_text().splitlines()[0]
    made.checksum_path.write_text(dump_line + "\n")
    conn.execute("delete from definition_groups where environment = 'PROD' and name = 'SPY'")
    before = _everything(conn)

    with pytest.raises(UserFacingError, match="made before") as refused:
        operations.restore(dbt_project.settings, made.path)

    assert f"{harness_command()} build --target prod" in str(refused.value)
    assert _everything(conn) == before
    assert _scratch_schemas(conn) == []


def test_restore_into_another_environment_is_named_explicitly_and_rewrites_the_rows(
    dbt_project: DbtProject, built_with_a_ledger: psycopg.Connection, tmp_path: Path
):
    conn = built_with_a_ledger
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    prod = _owned_slice(conn, "PROD")
    operations.rollback(dbt_project.settings, "PROD", "public")

    restored = operations.restore(dbt_project.settings, made.path, into_environment="UAT")

    assert restored["definition_groups"] == made.rows["definition_groups"]
    uat = _owned_slice(conn, "UAT")
    environment_column = 6  # definition_groups.environment
    assert [row[environment_column] for row in uat] == ["UAT"] * len(prod)
    assert [row[:environment_column] + row[environment_column + 1 :] for row in uat] == [
        row[:environment_column] + row[environment_column + 1 :] for row in prod
    ]
    assert _owned_slice(conn, "PROD") == []
    # UAT's ledger is started: its next build adopts nothing, it finds the restored rows
    assert conn.execute(
        "select adopted_groups from migration_ledger_environments where environment = 'UAT'"
    ).fetchone() == (0,)
    # the same rows into TEST would take ids UAT now holds: refused, naming the row
    before = _everything(conn)
    with pytest.raises(UserFacingError, match=r"definition_groups id \d+ .*UAT") as refused:
        operations.restore(dbt_project.settings, made.path, into_environment="TEST")
    assert str(refused.value).count(". ") == 0, refused.value
    assert _everything(conn) == before
    assert _scratch_schemas(conn) == []


def test_restore_into_another_schema_is_named_explicitly(
    dbt_project: DbtProject, built_with_a_ledger: psycopg.Connection, tmp_path: Path
):
    conn = built_with_a_ledger
    _tables_like_publics(conn, "restored")
    copy_ledger_tables(conn, "restored")
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    before = _everything(conn)

    restored = operations.restore(dbt_project.settings, made.path, into_schema="restored")

    assert restored["definition_groups"] == made.rows["definition_groups"]
    copied = conn.execute("select * from restored.definition_groups order by id").fetchall()
    assert (
        copied
        == conn.execute(
            "select * from public.definition_groups where environment = 'PROD' order by id"
        ).fetchall()
    )
    ledger = conn.execute("select count(*) from restored.migration_ledger_groups").fetchone()
    assert ledger == (made.rows["definition_groups"],)
    assert _everything(conn) == before  # public as it was


# --- B: no scratch schema is left behind -------------------------------------------------------


def test_a_failed_pg_restore_leaves_no_scratch_schema_and_no_change(
    dbt_project: DbtProject,
    built_with_a_ledger: psycopg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """pg_restore that fails after it created the scratch schema (a full disk, a lost
    connection half-way)."""
    conn = built_with_a_ledger
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    real = operations.client_program
    failing = tmp_path / "pg_restore"

    def client_program(name: str, server_major: int) -> Path:
        program = real(name, server_major)
        if name != "pg_restore":
            return program
        failing.write_text(
            f'#!/bin/sh\n"{program}" "$@"\necho "pg_restore: error: could not write" >&2\nexit 1\n'
        )
        failing.chmod(failing.stat().st_mode | stat.S_IXUSR)
        return failing

    monkeypatch.setattr(operations, "client_program", client_program)
    before = _everything(conn)

    with pytest.raises(UserFacingError, match="pg_restore failed"):
        operations.restore(dbt_project.settings, made.path)

    assert _scratch_schemas(conn) == []
    assert _everything(conn) == before


def test_a_failed_insert_leaves_no_change_and_no_scratch_schema(
    dbt_project: DbtProject,
    built_with_a_ledger: psycopg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    conn = built_with_a_ledger
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    conn.execute("delete from definition_groups where environment = 'PROD' and name = 'QQQ'")
    # somebody's rule the backup's rows break (existing rows are not checked: NOT VALID)
    conn.execute(
        "alter table definition_groups add constraint no_new_qqq check (name <> 'QQQ') not valid"
    )
    before = _everything(conn)

    assert main(["restore", str(made.path), "--yes"]) == 2

    err = capsys.readouterr().err
    assert "no_new_qqq" in err and "nothing was changed" in err and "Traceback" not in err
    assert _scratch_schemas(conn) == []
    assert _everything(conn) == before


# --- C: only the ledger's rows ------------------------------------------------------------------


def test_rollback_deletes_only_the_ledger_rows_and_keeps_a_group_foreign_rows_use(
    built_with_a_ledger: psycopg.Connection,
    foreign_rows_in_prod: ForeignRows,
    capsys: pytest.CaptureFixture[str],
):
    conn = built_with_a_ledger
    foreign = foreign_rows_in_prod
    others = (_owned_slice(conn, "DEFAULT"), _owned_slice(conn, "TEST"))

    assert main(["rollback", "--target", "prod", "--yes"]) == 0

    out = capsys.readouterr().out
    assert _exists(conn, "definition_groups", foreign.legacy_group)
    assert _exists(conn, "group_memberships", foreign.legacy_membership)
    assert _exists(conn, "group_memberships", foreign.hand_membership)
    # SPY stays (its foreign member references it), with nothing of the migration's in it
    assert _exists(conn, "definition_groups", foreign.spy)
    members = conn.execute(
        "select id from group_memberships where group_id = %s", (foreign.spy,)
    ).fetchall()
    assert members == [(foreign.hand_membership,)]
    groups, memberships = ledger_ids(conn, "PROD")
    assert groups == {foreign.spy} and memberships == set()
    remaining = conn.execute(
        "select id from definition_groups where environment = 'PROD' order by id"
    ).fetchall()
    assert remaining == sorted([(foreign.legacy_group,), (foreign.spy,)])
    assert re.search(r"kept .*SPY.*1 membership", out), out
    assert (_owned_slice(conn, "DEFAULT"), _owned_slice(conn, "TEST")) == others


def test_rollback_shows_what_it_deletes_and_what_it_keeps_before_it_asks(
    built_with_a_ledger: psycopg.Connection,
    foreign_rows_in_prod: ForeignRows,
    capsys: pytest.CaptureFixture[str],
):
    conn = built_with_a_ledger
    groups, memberships = ledger_ids(conn, "PROD")
    before = _everything(conn)

    assert main(["rollback", "--target", "prod"]) == 2  # no terminal, no --yes

    out = capsys.readouterr().out
    plan = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    # SPY is the migration's but stays for the foreign membership it holds
    assert re.search(rf"delete +{len(groups) - 1} .*keep +2\b", plan["definition_groups"]), plan[
        "definition_groups"
    ]
    assert re.search(rf"delete +{len(memberships)} .*keep +2\b", plan["group_memberships"]), plan[
        "group_memberships"
    ]
    assert "SPY" in out
    assert _everything(conn) == before


def test_rollback_closes_the_history_only_of_the_rows_it_deletes_and_resets_the_analysts(
    dbt_project: DbtProject,
    built_with_a_ledger: psycopg.Connection,
    foreign_rows_in_prod: ForeignRows,
):
    conn = built_with_a_ledger
    spy = foreign_rows_in_prod.spy

    operations.rollback(dbt_project.settings, "PROD", "public")

    open_groups = conn.execute(
        "select group_id from definition_group_history"
        " where environment = 'PROD' and valid_to is null"
    ).fetchall()
    assert open_groups == [(spy,)]  # the kept group's period goes on
    open_members = conn.execute(
        "select count(*) from group_membership_history"
        " where environment = 'PROD' and valid_to is null"
    ).fetchone()
    assert open_members == (0,)
    watermarks = conn.execute(
        "select consumer from migration_watermarks where environment = 'PROD'"
        " and split_part(consumer, '@', 1) = any(%s)",
        (list(operations.ANALYST_TABLES),),
    ).fetchall()
    assert watermarks == []
    assert conn.execute(
        "select count(*) from migration_watermarks where environment = 'TEST'"
        " and split_part(consumer, '@', 1) = any(%s)",
        (list(operations.ANALYST_TABLES),),
    ).fetchone() == (len(operations.ANALYST_TABLES),)


def test_backup_leaves_foreign_rows_out_and_says_how_many(
    built_with_a_ledger: psycopg.Connection,
    foreign_rows_in_prod: ForeignRows,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    conn = built_with_a_ledger
    groups, memberships = ledger_ids(conn, "PROD")

    assert main(["backup", "--target", "prod", "--out", str(tmp_path)]) == 0

    out = capsys.readouterr().out
    assert re.search(r"left out 1 group and 2 memberships written by others", out), out
    meta = json.loads(next(tmp_path.glob("*.dump.json")).read_text())
    assert meta["rows"]["definition_groups"] == len(groups)
    assert meta["rows"]["group_memberships"] == len(memberships)
    assert meta["rows"]["migration_ledger_groups"] == len(groups)
    assert meta["left_out"] == {"definition_groups": 1, "group_memberships": 2}


def test_restore_keeps_foreign_rows_and_puts_back_the_migrations_rows_with_their_ledger(
    dbt_project: DbtProject,
    built_with_a_ledger: psycopg.Connection,
    foreign_rows_in_prod: ForeignRows,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    conn = built_with_a_ledger
    foreign = foreign_rows_in_prod
    owned = _owned_slice(conn, "PROD")
    ledger = ledger_ids(conn, "PROD")
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    # after the backup: the migration's rows damaged, and somebody adds a group of theirs
    conn.execute(
        "delete from definition_groups where environment = 'PROD' and name in ('QQQ', 'XLE')"
    )
    conn.execute(
        "update group_memberships set weight = 0.5 where group_id in"
        " (select id from definition_groups where environment = 'PROD')"
    )
    late = _insert_group(conn, "late_list", "PROD")

    assert main(["restore", str(made.path), "--yes"]) == 0

    out = capsys.readouterr().out
    assert re.search(r"definition_groups .*keep +2\b", out), out  # legacy_watchlist, late_list
    assert re.search(r"group_memberships .*keep +2\b", out), out
    assert _owned_slice(conn, "PROD") == owned
    assert ledger_ids(conn, "PROD") == ledger
    for table, row_id in (
        ("definition_groups", foreign.legacy_group),
        ("definition_groups", late),
        ("group_memberships", foreign.legacy_membership),
    ):
        assert _exists(conn, table, row_id), (table, row_id)
    # the hand-added membership kept its weight: restore never wrote it
    assert conn.execute(
        "select group_id, symbol, weight from group_memberships where id = %s",
        (foreign.hand_membership,),
    ).fetchone() == (foreign.spy, "TSLA", 0.5)


def test_restore_refuses_when_a_foreign_group_took_a_backed_up_groups_name(
    dbt_project: DbtProject, built_with_a_ledger: psycopg.Connection, tmp_path: Path
):
    conn = built_with_a_ledger
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    operations.rollback(dbt_project.settings, "PROD", "public")
    theirs = _insert_group(conn, "SPY", "PROD", type="ETF")
    before = _everything(conn)

    with pytest.raises(UserFacingError, match=rf"SPY.*held by .*id {theirs}"):
        operations.restore(dbt_project.settings, made.path)

    assert _everything(conn) == before
    assert _scratch_schemas(conn) == []


def test_restore_refuses_when_a_foreign_membership_took_a_backed_up_membership(
    dbt_project: DbtProject, built_with_a_ledger: psycopg.Connection, tmp_path: Path
):
    conn = built_with_a_ledger
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    spy = _group_id(conn, "PROD", "SPY")
    conn.execute("delete from group_memberships where group_id = %s and symbol = 'AAPL'", (spy,))
    theirs = _insert_membership(conn, spy, "AAPL")
    before = _everything(conn)

    with pytest.raises(UserFacingError, match=rf"AAPL.*held by .*id {theirs}"):
        operations.restore(dbt_project.settings, made.path)

    assert _everything(conn) == before


def test_restore_refuses_when_a_foreign_row_took_a_backed_up_id(
    dbt_project: DbtProject, built_with_a_ledger: psycopg.Connection, tmp_path: Path
):
    conn = built_with_a_ledger
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)
    spy = _group_id(conn, "PROD", "SPY")
    operations.rollback(dbt_project.settings, "PROD", "public")
    _insert_group(conn, "hand_list", "DEFAULT", id=spy)
    before = _everything(conn)

    with pytest.raises(UserFacingError, match=rf"definition_groups id {spy} .*hand_list"):
        operations.restore(dbt_project.settings, made.path)

    assert _everything(conn) == before


def test_rollback_restore_build_gives_the_analysts_and_the_history_a_fresh_build_gives(
    dbt_project: DbtProject,
    built_with_a_ledger: psycopg.Connection,
    foreign_rows_in_prod: ForeignRows,
    tmp_path: Path,
):
    """PROD built from nothing, then built again beside another writer's rows (the analyst
    tables hold the migration's rows: the same as a build from nothing); after rollback →
    restore → build, the analyst tables are that build's again, the history answers what the
    tables hold, the migration's rows are back with their ids, and the other writer's rows
    were never touched."""
    conn = built_with_a_ledger
    dbt_project.build("prod")
    fresh = _analyst_rows(conn, "PROD")
    assert all(fresh.values())
    ours = environment_part(published(conn), "PROD")
    theirs = foreign_rows(conn)
    made = operations.backup(dbt_project.settings, "PROD", directory=tmp_path)

    assert main(["rollback", "--target", "prod", "--yes"]) == 0
    assert foreign_rows(conn) == theirs
    assert main(["restore", str(made.path), "--yes"]) == 0
    dbt_project.build("prod")

    assert _analyst_rows(conn, "PROD") == fresh
    assert environment_part(published(conn), "PROD") == ours
    assert foreign_rows(conn) == theirs
    groups, memberships = history_as_of(conn, last_run_time(conn, "PROD"))
    held_groups, held_memberships = tables_state(conn)
    assert {k: v for k, v in groups.items() if k[0] == "PROD"} == {
        k: v for k, v in held_groups.items() if k[0] == "PROD"
    }
    assert {k: v for k, v in memberships.items() if k[0] == "PROD"} == {
        k: v for k, v in held_memberships.items() if k[0] == "PROD"
    }


def test_rollback_without_a_ledger_is_refused_saying_what_to_do(
    built_with_a_ledger: psycopg.Connection, capsys: pytest.CaptureFixture[str]
):
    conn = built_with_a_ledger
    # a schema built by a release before the ledger (the views over it go with it)
    conn.execute("drop table migration_ledger_groups, migration_ledger_memberships cascade")
    before = (
        table_fingerprint(conn, "definition_groups"),
        table_fingerprint(conn, "group_memberships"),
    )

    assert main(["rollback", "--target", "prod", "--yes"]) == 2

    err = capsys.readouterr().err
    assert "ledger" in err and f"{harness_command()} build --target prod" in err
    assert before == (
        table_fingerprint(conn, "definition_groups"),
        table_fingerprint(conn, "group_memberships"),
    )


def test_an_environment_built_before_the_ledger_is_refused_until_a_build_records_it(
    built_with_a_ledger: psycopg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    """An upgraded database whose PROD has not been built since: its rows are the
    migration's, but nothing records it yet."""
    conn = built_with_a_ledger
    conn.execute(
        "delete from migration_ledger_memberships where group_id in"
        " (select group_id from migration_ledger_groups where environment = 'PROD')"
    )
    conn.execute("delete from migration_ledger_groups where environment = 'PROD'")
    conn.execute("delete from migration_ledger_environments where environment = 'PROD'")
    before = _everything(conn)

    assert main(["rollback", "--target", "prod", "--yes"]) == 2
    assert main(["backup", "--target", "prod", "--out", str(tmp_path)]) == 2

    err = capsys.readouterr().err
    assert err.count("has not been started") == 2
    assert f"{harness_command()} build --target prod" in err
    assert _everything(conn) == before
    assert list(tmp_path.iterdir()) == []
