"""Other writers share the two tables (docs/design.md, "Other writers"): the application's
loaders, a legacy script, an analyst fixing a group by hand.  The migration owns exactly the
rows its ledger lists; a row it did not write is never changed or deleted, never stops a run,
and never fails the identity test, the counts or the parity.

Each test starts from the compact cache in DEFAULT, built once (the module's template), lets
another writer act, then builds again, as the operators' review did on the previous release.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from support.dbt_project import DbtProject
from support.legacy_cache import LegacyCache, small_cache
from support.parity import dbt_test_statuses

BUILD_ARGS = ("--exclude", "resource_type:unit_test", "test_type:generic")
IDENTITY_TEST = "assert_every_source_element_is_accounted_for"
RECONCILE = {"reconcile_memberships": True}


def build_once(project: DbtProject) -> None:
    with project.connect() as conn:
        small_cache(LegacyCache(conn).create())
    project.build("default")


def _build(project: DbtProject, *, full_refresh: bool = False, **kwargs: Any) -> None:
    """A build whose identity test passes."""
    args = (*BUILD_ARGS, "--full-refresh") if full_refresh else BUILD_ARGS
    statuses = dbt_test_statuses(project.build("default", args=args, **kwargs))
    assert statuses.get(IDENTITY_TEST) == "pass", statuses


def _group_id(conn: psycopg.Connection, name: str, group_type: str = "ETF") -> int:
    row = conn.execute(
        "select id from definition_groups where environment = 'DEFAULT' and type = %s"
        " and name = %s",
        (group_type, name),
    ).fetchone()
    assert row is not None, f"no {group_type} {name}"
    return int(row[0])


def _insert_group(
    conn: psycopg.Connection, name: str, group_type: str, metadata: str | None
) -> int:
    row = conn.execute(
        "insert into definition_groups (name, type, environment, description, metadata)"
        " values (%s, %s, 'DEFAULT', 'written by hand', %s::jsonb) returning id",
        (name, group_type, metadata),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _insert_members(conn: psycopg.Connection, group_id: int, *symbols: str) -> list[int]:
    return [
        int(
            conn.execute(
                "insert into group_memberships (group_id, symbol) values (%s, %s) returning id",
                (group_id, symbol),
            ).fetchone()[0]  # type: ignore[index]
        )
        for symbol in symbols
    ]


def _row_versions(conn: psycopg.Connection, group_ids: list[int], membership_ids: list[int]) -> Any:
    """Every column and the row version (xmin) of those rows: any update or delete shows."""
    groups = conn.execute(
        "select g.id, g::text, g.xmin::text from definition_groups g where g.id = any(%s)"
        " order by g.id",
        (group_ids,),
    ).fetchall()
    memberships = conn.execute(
        "select m.id, m::text, m.xmin::text from group_memberships m where m.id = any(%s)"
        " order by m.id",
        (membership_ids,),
    ).fetchall()
    return groups, memberships


def _members(conn: psycopg.Connection, group_id: int) -> list[str]:
    rows = conn.execute(
        "select symbol from group_memberships where group_id = %s order by symbol", (group_id,)
    ).fetchall()
    return [symbol for (symbol,) in rows]


def test_a_build_leaves_a_hand_written_group_with_a_source_like_metadata_alone(
    module_copy: psycopg.Connection, dbt_project: DbtProject
):
    conn = module_copy
    legacy = _insert_group(conn, "LEGACY1", "ETF", '{"source": {"type": "manual", "key": "L1"}}')
    legacy_members = _insert_members(conn, legacy, "AAPL", "MSFT")
    sector = _insert_group(conn, "bloomberg_tech", "SECTOR", '{"source": "bloomberg"}')
    sector_members = _insert_members(conn, sector, "AAPL", "ZZZZ")
    before = _row_versions(conn, [legacy, sector], legacy_members + sector_members)

    _build(dbt_project)
    _build(dbt_project, variables=RECONCILE)

    assert _row_versions(conn, [legacy, sector], legacy_members + sector_members) == before


def test_a_copy_of_a_migrated_group_and_a_hand_added_member_do_not_stop_the_build(
    module_copy: psycopg.Connection, dbt_project: DbtProject
):
    conn = module_copy
    copy = int(
        conn.execute(
            "insert into definition_groups (name, type, environment, description, metadata)"
            " select 'SPY_copy', type, environment, 'copy', metadata from definition_groups"
            " where name = 'SPY' returning id"
        ).fetchone()[0]  # type: ignore[index]
    )
    spy = _group_id(conn, "SPY")
    hand_added = _insert_members(conn, spy, "LEGX")
    before = _row_versions(conn, [copy], hand_added)

    _build(dbt_project)
    _build(dbt_project, variables=RECONCILE)

    assert _row_versions(conn, [copy], hand_added) == before
    assert _members(conn, spy) == ["AAPL", "LEGX", "MSFT", "NVDA", "XOM"]
    (status, detail, foreign) = conn.execute(
        "select status, detail, foreign_memberships"
        " from public_ops_default.cache_entry_reconciliation where entry_key = 'SPY'"
    ).fetchone()  # type: ignore[misc]
    assert (status, foreign) == ("represented", 1), detail


def test_a_member_another_writer_already_added_is_not_written_twice(
    module_copy: psycopg.Connection, dbt_project: DbtProject
):
    conn = module_copy
    cache = LegacyCache(conn)
    spy = _group_id(conn, "SPY")
    theirs = _insert_members(conn, spy, "AMZN")
    before = _row_versions(conn, [], theirs)
    cache.update("etf_holdings", "SPY", {"holdings": ["AAPL", "MSFT", "NVDA", "XOM", "AMZN"]})

    _build(dbt_project)

    assert _row_versions(conn, [], theirs) == before
    assert _members(conn, spy) == ["AAPL", "AMZN", "MSFT", "NVDA", "XOM"]


def test_a_migrated_row_another_writer_changed_or_deleted_is_put_back_with_its_id(
    module_copy: psycopg.Connection, dbt_project: DbtProject
):
    conn = module_copy
    spy, qqq = _group_id(conn, "SPY"), _group_id(conn, "QQQ")
    spy_row = conn.execute("select name, description from definition_groups where id = %s", (spy,))
    expected = spy_row.fetchone()
    conn.execute(
        "update definition_groups set name = 'SPY2', description = 'x' where id = %s", (spy,)
    )
    conn.execute("delete from definition_groups where id = %s", (qqq,))

    _build(dbt_project)

    assert (
        conn.execute(
            "select name, description from definition_groups where id = %s", (spy,)
        ).fetchone()
        == expected
    )
    assert _group_id(conn, "QQQ") == qqq
    assert _members(conn, qqq) == ["AAPL", "MSFT", "NVDA"]


def test_a_name_another_writer_holds_is_a_name_collision_not_a_failed_run(
    module_copy: psycopg.Connection, dbt_project: DbtProject
):
    conn = module_copy
    # a provenance-like metadata that names no entry of this cache: still theirs
    theirs = _insert_group(conn, "ARKK", "ETF", '{"source": {"type": "manual", "key": "ARKK"}}')
    before = _row_versions(conn, [theirs], [])
    entry = LegacyCache(conn).add("etf_holdings", "ARKK", "ARK Innovation", {"holdings": ["TSLA"]})

    _build(dbt_project)

    assert _row_versions(conn, [theirs], []) == before
    (reason, detail) = conn.execute(
        "select reason, detail from public_ops_default.migration_exceptions"
        " where cache_entry_id = %s",
        (entry,),
    ).fetchone()  # type: ignore[misc]
    assert reason == "name_collision"
    assert f"definition_groups row {theirs}" in detail


def test_a_removed_entry_keeps_its_group_while_another_writer_s_members_reference_it(
    module_copy: psycopg.Connection, dbt_project: DbtProject
):
    conn = module_copy
    spy = _group_id(conn, "SPY")
    theirs = _insert_members(conn, spy, "LEGX")
    before = _row_versions(conn, [], theirs)
    LegacyCache(conn).remove("etf_holdings", "SPY")

    _build(dbt_project)

    # the cascade would have deleted their row: the group stays, with their member only
    assert _row_versions(conn, [], theirs) == before
    assert _members(conn, spy) == ["LEGX"]
    conn.execute("delete from group_memberships where id = any(%s)", (theirs,))
    _build(dbt_project)
    assert conn.execute(
        "select count(*) from definition_groups where id = %s", (spy,)
    ).fetchone() == (0,)


def test_an_unchanged_entry_reinserted_by_its_loader_keeps_a_contested_name(
    dbt_project: DbtProject,
):
    with dbt_project.connect() as conn:
        cache = LegacyCache(conn).create()
        cache.add("stock_universe", "etf_foo", "Foo stocks", ["AAPL"])
        cache.add("etf_universe", "foo", "Foo ETFs", ["MSFT"])
        _build(dbt_project)
        holder = _group_id(conn, "etf_foo", "CUSTOM")
        assert _members(conn, holder) == ["AAPL"]

        # the loader's routine delete-and-re-insert, unchanged, in one transaction
        with conn.transaction():
            cache.replace("stock_universe", "etf_foo", ["AAPL"])
        _build(dbt_project)
        _build(dbt_project, full_refresh=True)

        assert _group_id(conn, "etf_foo", "CUSTOM") == holder
        assert _members(conn, holder) == ["AAPL"]


def _view_schema(conn: psycopg.Connection, view: str) -> str:
    row = conn.execute(
        "select table_schema from information_schema.views where table_name = %s", (view,)
    ).fetchone()
    assert row is not None, f"no view {view}"
    return str(row[0])


def test_views_others_built_on_the_migration_s_views_survive_its_builds(
    module_copy: psycopg.Connection, dbt_project: DbtProject
):
    # an operator's own reports on the staging view of cache_entries, on the change backlog
    # and on the retirement check (a view on a view on migration_exceptions, which every run
    # recomputes): a build replaces them in place, it does not drop what depends on them.
    # (--full-refresh rebuilds the intermediate tables the reconciliation reads, and drops
    # the views on it: README, "Other writers".)
    conn = module_copy
    staging = _view_schema(conn, "stg_legacy__cache_entries")
    ops = _view_schema(conn, "migration_change_backlog")
    readiness_before = conn.execute(
        sql.SQL("select * from {}.cache_retirement_readiness order by 1").format(
            sql.Identifier(ops)
        )
    ).fetchall()
    conn.execute(
        sql.SQL(
            "create view public.retirement_watch as select * from {}.cache_retirement_readiness"
        ).format(sql.Identifier(ops))
    )
    conn.execute(
        sql.SQL(
            "create view public.entries_per_type as select cache_type, count(*) as entries"
            " from {}.stg_legacy__cache_entries group by cache_type"
        ).format(sql.Identifier(staging))
    )
    conn.execute(
        sql.SQL(
            "create view public.backlog_watch as select * from {}.migration_change_backlog"
        ).format(sql.Identifier(ops))
    )
    entries_before = conn.execute("select * from public.entries_per_type order by 1").fetchall()
    # a legacy reader's view on the compatibility relation (a table the migration keeps in
    # place: it is never rebuilt, so what depends on it stays, --full-refresh included)
    conn.execute(
        "create view public.legacy_reader_etfs as select key, value"
        " from public_compat_default.cache_entries where type = 'etf_holdings'"
    )
    etfs_before = conn.execute("select * from public.legacy_reader_etfs order by 1").fetchall()

    _build(dbt_project)
    _build(dbt_project)

    assert (
        conn.execute("select * from public.retirement_watch order by 1").fetchall()
        == readiness_before
    )
    _build(dbt_project, full_refresh=True)
    assert conn.execute("select * from public.entries_per_type order by 1").fetchall() == (
        entries_before
    )
    assert conn.execute("select count(*) >= 0 from public.backlog_watch").fetchone() == (True,)
    assert etfs_before and (
        conn.execute("select * from public.legacy_reader_etfs order by 1").fetchall() == etfs_before
    )
