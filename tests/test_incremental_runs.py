"""Incremental behaviour of the two contract tables (docs/design.md §3), on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from psycopg import sql
from support.databases import PgServer
from support.dbt_project import DbtProject, failure_messages
from support.legacy_cache import (
    LegacyCache,
    cache_fingerprint,
    published,
    small_cache,
    table_fingerprint,
)


def _both_tables(conn: psycopg.Connection) -> tuple[str, str]:
    groups = table_fingerprint(conn, "definition_groups")
    return groups, table_fingerprint(conn, "group_memberships")


def _member_count(conn: psycopg.Connection, group_id: int) -> int:
    row = conn.execute(
        "select count(*) from group_memberships where group_id = %s", (group_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])


# The analyst models' content, without the ids and timestamps that differ between databases.
ANALYST_ROWS_SQL = {
    "symbol_memberships": "select environment, symbol, etfs, themes, sector, industry,"
    " custom_groups, etf_count, theme_count, group_count from symbol_memberships"
    " order by environment, symbol",
    "group_summary": "select environment, type, name, description, member_count,"
    " weighted_member_count, weight_coverage, total_weight, source_type, source_key, source_name"
    " from group_summary order by environment, type, name",
    "etf_overlap": "select * from etf_overlap order by environment, etf, other_etf",
    "group_holdings": "select environment, type, name, member_count, symbols, weights, positions"
    " from group_holdings order by environment, type, name",
    # the compatibility relation, kept from the change log like them (docs/design.md §13)
    "cache_entries_compat": "select type, name, key, value, environment, migration_status,"
    " is_exact_legacy_value, migration_exceptions from public_compat_default.cache_entries"
    " order by type, key, environment, migration_status",
}

# group_summary rows that disagree with the group they summarise (or have none / no group).
STALE_SUMMARIES_SQL = """
select coalesce(g.name, s.name)
from definition_groups g full join group_summary s on s.group_id = g.id
where
    s.group_id is null or g.id is null
    or (g.environment, g.type, g.name, g.created_at, g.updated_at, g.last_update)
    is distinct from (s.environment, s.type, s.name, s.created_at, s.updated_at, s.last_update)
"""


def _analyst_rows(conn: psycopg.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {model: conn.execute(query).fetchall() for model, query in ANALYST_ROWS_SQL.items()}


DEFAULT_ROWS_SQL = """
select g.*, m.* from definition_groups g left join group_memberships m on m.group_id = g.id
where g.environment = 'DEFAULT' order by g.id, m.id
"""


def build_once(project: DbtProject) -> None:
    """The module's template (conftest.module_template): the compact cache, built once."""
    with project.connect() as conn:
        small_cache(LegacyCache(conn).create())
    project.build()


@pytest.fixture
def built_small_cache(module_copy: psycopg.Connection) -> LegacyCache:
    """The dbt project's database holding the compact cache, already built once (a copy of
    the module's template); its clock goes on from the cache's latest stamp."""
    row = module_copy.execute(
        "select max(greatest(created_at, updated_at)) from public.cache_entries"
    ).fetchone()
    assert row is not None
    return LegacyCache(module_copy, clock=row[0])


@pytest.fixture
def small_legacy_cache(dbt_project: DbtProject) -> LegacyCache:
    """The dbt project's database holding the compact cache with every legacy shape."""
    conn = dbt_project.connect()
    return small_cache(LegacyCache(conn).create())


REFERENCE_BUILD_ARGS = (
    "--exclude", "resource_type:test", "resource_type:unit_test",
    # the operators' views (migration_exceptions stays: the compatibility relation reads it)
    "path:models/marts/operations,config.materialized:view", "path:models/marts/history",
)  # fmt: skip


def _fresh_build_of(
    cache: LegacyCache, reference: DbtProject, pg_server: PgServer, target: str = "default"
) -> psycopg.Connection:
    """Rebuild the reference database from nothing with the same cache content: the models
    these tests compare (the two tables, the analyst models and the compatibility relation;
    not the operators' views or the history, and not the reference's own tests)."""
    pg_server.recreate_database(reference.settings["PGDATABASE"])
    conn = reference.connect()
    cache.copy_to(conn)
    reference.build(target, args=REFERENCE_BUILD_ARGS)
    return conn


def test_second_build_changes_no_row(dbt_project: DbtProject, built_small_cache: LegacyCache):
    conn = built_small_cache.conn
    before = (
        table_fingerprint(conn, "definition_groups"),
        table_fingerprint(conn, "group_memberships"),
    )

    dbt_project.build()

    after = (
        table_fingerprint(conn, "definition_groups"),
        table_fingerprint(conn, "group_memberships"),
    )
    assert after == before


# Tables whose rows a run keeps; a run with nothing to do must not rewrite any of them.
KEPT_TABLES = (
    "public_intermediate_default.int_group_entry_contents",
    "public_intermediate_default.int_member_elements",
    "public_intermediate_default.int_stock_sectors",
    "public.definition_groups",
    "public.group_memberships",
    "public.symbol_memberships",
    "public.group_summary",
    "public.etf_overlap",
    "public.group_holdings",
    "public.group_membership_history",
    "public.definition_group_history",
)


def _row_versions(conn: psycopg.Connection) -> dict[str, str]:
    """Every row version (physical place and writing transaction) of each kept table."""
    versions = {}
    for table in KEPT_TABLES:
        schema, name = table.split(".")
        query = sql.SQL(
            "select md5(coalesce(string_agg(ctid::text || xmin::text, ',' order by ctid), ''))"
            " from {}"
        ).format(sql.Identifier(schema, name))
        row = conn.execute(query).fetchone()
        assert row is not None
        versions[table] = str(row[0])
    return versions


def test_a_run_without_source_changes_rewrites_no_row(
    dbt_project: DbtProject, built_small_cache: LegacyCache
):
    conn = built_small_cache.conn
    logged_before = conn.execute("select count(*) from migration_change_log").fetchone()
    versions_before = _row_versions(conn)

    dbt_project.build()

    assert _row_versions(conn) == versions_before
    assert conn.execute("select count(*) from migration_change_log").fetchone() == logged_before


def test_a_change_is_logged_once_and_applied_by_every_analyst_model(
    dbt_project: DbtProject, built_small_cache: LegacyCache
):
    conn = built_small_cache.conn
    built_small_cache.replace("etf_holdings", "XLE", {"holdings": ["XOM", "COP", "EOG"]})

    dbt_project.build()

    logged = conn.execute(
        "select symbol, change, batch from migration_change_log"
        " where environment = 'DEFAULT' and group_name = 'XLE' and symbol in ('COP', 'EOG')"
        " order by symbol"
    ).fetchall()
    assert [(symbol, change) for symbol, change, _ in logged] == [
        ("COP", "insert"),
        ("EOG", "insert"),
    ]
    batch = logged[0][2]
    # an analyst model's watermark is named after the model and its rules' version
    watermarks = dict(
        conn.execute(
            "select split_part(consumer, '@', 1), batch from migration_watermarks"
            " where environment = 'DEFAULT'"
        ).fetchall()
    )
    for model in (
        "group_summary",
        "symbol_memberships",
        "etf_overlap",
        "group_holdings",
        "group_membership_history",
        "definition_group_history",
    ):
        assert watermarks[model] >= batch, f"{model} has not applied batch {batch}"
    assert conn.execute(
        "select member_count from group_summary where environment = 'DEFAULT' and name = 'XLE'"
    ).fetchone() == (3,)
    assert conn.execute(
        "select etfs from symbol_memberships where environment = 'DEFAULT' and symbol = 'COP'"
    ).fetchone() == (["XLE"],)


def test_memberships_are_left_vacuumed_for_index_only_reads(
    dbt_project: DbtProject, small_legacy_cache: LegacyCache
):
    conn = small_legacy_cache.conn

    def heap_fetches_of_an_index_only_read() -> int:
        with conn.transaction():
            conn.execute("set local enable_seqscan = off")
            conn.execute("set local enable_bitmapscan = off")
            row = conn.execute(
                "explain (analyze, format json)"
                " select count(*) from public.group_memberships where group_id > 0"
            ).fetchone()
        assert row is not None
        plan = row[0][0]["Plan"]["Plans"][0]
        assert plan["Node Type"] == "Index Only Scan"
        return plan["Heap Fetches"]

    # with the profile's threads: VACUUM runs at the end of the run, once no other model's
    # transaction (begun before the memberships' commit) can keep it from marking rows visible
    dbt_project.build()
    assert heap_fetches_of_an_index_only_read() == 0
    pages = conn.execute(
        "select relpages, relallvisible, last_autoanalyze, last_autovacuum"
        " from pg_class join pg_stat_user_tables on relid = pg_class.oid"
        " where pg_class.oid = 'public.group_memberships'::regclass"
    ).fetchone()
    assert pages is not None and pages[0] > 0 and pages[1] == pages[0], pages

    # a run that writes memberships vacuums them again (one that writes none skips it)
    small_legacy_cache.replace("etf_holdings", "XLE", {"holdings": ["XOM", "COP", "EOG"]})
    dbt_project.build()
    assert heap_fetches_of_an_index_only_read() == 0

    # ... and so does a run that publishes without building group_memberships itself (the
    # memberships' diff is written by definition_groups' post-hook)
    small_legacy_cache.replace("etf_holdings", "XLE", {"holdings": ["XOM", "COP", "OXY"]})
    dbt_project.invoke("run", args=("--select", "+definition_groups"))
    assert conn.execute(
        "select count(*) from public.group_memberships m join public.definition_groups g"
        " on g.id = m.group_id where g.name = 'XLE' and m.symbol = 'OXY'"
    ).fetchone() == (1,)
    assert heap_fetches_of_an_index_only_read() == 0


def _rename_fund(c: LegacyCache) -> None:
    c.replace("etf_holdings", "SPY", {"holdings": ["AAPL", "MSFT", "NVDA", "XOM"],
              "total_holdings": 4, "market_cap_threshold": 5000000000,
              "last_updated": "2025-12-05T10:00:00", "data_source": "spy_holdings.csv"},
              name="SPDR S&P 500 ETF")  # fmt: skip


def _rename_sector_and_drop_a_stock(c: LegacyCache) -> None:
    # every stock is matched again (the sectors changed) in the run that must also see CVX go
    c.replace("sector_industry_map", "energy", {"industries": ["Oil & Gas"]},
              name="Energy & Utilities")  # fmt: skip
    c.remove("stock_metadata", "CVX")


SCRIPTED_CHANGES: list[tuple[str, Callable[[LegacyCache], None]]] = [
    ("add and remove symbols", lambda c: c.replace(
        "etf_holdings", "XLE", {"holdings": ["XOM", "COP", "EOG"]})),
    ("change a weight", lambda c: c.replace(
        "etf_holdings", "QQQ", {"holdings": [
            {"symbol": "AAPL", "weight": 0.2}, {"symbol": "MSFT", "weight": 0.1},
            {"ticker": "NVDA", "weight_pct": 8.5}], "last_updated": "2025-12-05T10:00:00"})),
    ("rename a fund", _rename_fund),
    ("add an entry", lambda c: c.add(
        "theme_definition", "nuclear_energy", "Nuclear Energy",
        {"description": "Nuclear", "symbols": ["CCJ", "SMR"]})),
    ("delete an entry", lambda c: c.remove("theme_definition", "ai_machine_learning")),
    ("move an entry to another environment", lambda c: c.move(
        "etf_holdings", "XLE", "DEFAULT", "PROD")),
    ("change a row leaving updated_at NULL", lambda c: c.replace(
        "theme_definition", "crypto_miners",
        {"description": "Bitcoin miners", "symbols": ["MARA", "RIOT", "HUT"]}, updated=False)),
    ("a stock changes sector", lambda c: c.replace(
        "stock_metadata", "NVDA", {"sector": "Energy", "industry": "Oil & Gas"})),
    ("update a fund's holdings in place (same id)", lambda c: c.update(
        "etf_holdings", "SPY", {"holdings": ["AAPL", "MSFT", "XOM"],
                                "last_updated": "2025-12-06T10:00:00"})),
    ("rename a sector while one of its stocks leaves", _rename_sector_and_drop_a_stock),
]  # fmt: skip


def test_each_incremental_run_equals_a_fresh_build(
    dbt_project: DbtProject,
    reference_project: DbtProject,
    pg_server: PgServer,
    built_small_cache: LegacyCache,
):
    previous = published(built_small_cache.conn)
    for label, change in SCRIPTED_CHANGES:
        change(built_small_cache)

        dbt_project.build(generic_tests=True)

        now = published(built_small_cache.conn)
        analyst_rows = _analyst_rows(built_small_cache.conn)
        with _fresh_build_of(built_small_cache, reference_project, pg_server) as reference:
            expected = published(reference)
            expected_analyst_rows = _analyst_rows(reference)
        assert now.groups == expected.groups, label
        assert now.memberships == expected.memberships, label
        # the analyst models recompute only what the change log names: same rows as a rebuild
        for model, rows in analyst_rows.items():
            assert rows == expected_analyst_rows[model], f"{label}: {model}"
        assert built_small_cache.conn.execute(STALE_SUMMARIES_SQL).fetchall() == [], label
        survivors = previous.group_ids.keys() & now.group_ids.keys()
        assert {k: now.group_ids[k] for k in survivors} == {
            k: previous.group_ids[k] for k in survivors
        }, f"{label}: a surviving group changed id"
        previous = now


def test_a_changed_type_mapping_reads_its_entries_again(
    dbt_project: DbtProject, built_small_cache: LegacyCache
):
    conn = built_small_cache.conn
    # the seed as dbt loaded it, edited the way a changed cache_type_mappings.csv would be
    conn.execute(
        "update public_staging_default.cache_type_mappings set name_prefix = 'fund_'"
        " where cache_type = 'etf_universe'"
    )

    dbt_project.invoke("run")  # not build: that would load the seed again

    names = conn.execute(
        "select name from definition_groups where metadata -> 'source' ->> 'type' = 'etf_universe'"
        " order by name"
    ).fetchall()
    assert names == [("fund_theme_crypto",), ("fund_tracked_etfs",)]


def test_full_refresh_keeps_every_id_and_the_foreign_key(
    dbt_project: DbtProject, built_small_cache: LegacyCache
):
    conn = built_small_cache.conn
    before = (
        table_fingerprint(conn, "definition_groups"),
        table_fingerprint(conn, "group_memberships"),
    )

    dbt_project.build(args=("--full-refresh",))

    after = (
        table_fingerprint(conn, "definition_groups"),
        table_fingerprint(conn, "group_memberships"),
    )
    assert after == before
    foreign_key = conn.execute(
        "select pg_get_constraintdef(oid) from pg_constraint"
        " where conrelid = 'public.group_memberships'::regclass and contype = 'f'"
    ).fetchone()
    assert foreign_key is not None
    assert "REFERENCES definition_groups(id) ON DELETE CASCADE" in foreign_key[0]


def test_deleting_a_group_deletes_its_memberships(
    dbt_project: DbtProject, built_small_cache: LegacyCache
):
    conn = built_small_cache.conn
    spy = conn.execute(
        "select id from definition_groups where name = 'SPY' and type = 'ETF'"
    ).fetchone()
    assert spy is not None
    assert _member_count(conn, spy[0]) == 4

    conn.execute("delete from definition_groups where id = %s", spy)

    assert _member_count(conn, spy[0]) == 0


def test_a_truncated_source_is_refused_until_overridden(
    dbt_project: DbtProject, built_small_cache: LegacyCache
):
    conn = built_small_cache.conn
    before = (
        table_fingerprint(conn, "definition_groups"),
        table_fingerprint(conn, "group_memberships"),
    )
    conn.execute(
        "delete from cache_entries where environment = 'DEFAULT' and type <> 'etf_holdings'"
    )

    refused = dbt_project.build(expect_success=False)

    message = failure_messages(refused)
    assert "Mass-delete guard" in message
    assert "definition_groups" in message and "allow_mass_delete" in message
    assert _both_tables(conn) == before

    dbt_project.build(variables={"allow_mass_delete": True})

    assert conn.execute("select count(*) from definition_groups").fetchone() == (3,)


EMPTY_MOST_MEMBER_LISTS = (
    "update cache_entries set value = jsonb_set(value, '{holdings}', '[]')"
    " where type = 'etf_holdings'",
    "update cache_entries set value = jsonb_set(value, '{symbols}', '[]')"
    " where type = 'theme_definition' or key = 'market_leaders'",
    "update cache_entries set value = '[]' where key = 'index_sp500'",
)


def test_emptied_member_lists_are_refused_by_the_membership_guard(
    dbt_project: DbtProject, built_small_cache: LegacyCache
):
    conn = built_small_cache.conn
    before = _both_tables(conn)
    # every group survives, but ETFs, themes and two universes lose 20 of the 30 memberships
    for statement in EMPTY_MOST_MEMBER_LISTS:
        conn.execute(statement)

    refused = dbt_project.build(expect_success=False)

    message = failure_messages(refused)
    assert "Mass-delete guard" in message and "group_memberships" in message
    assert _both_tables(conn) == before


def test_a_membership_edited_by_hand_is_repaired_only_by_a_reconciliation(
    dbt_project: DbtProject, built_small_cache: LegacyCache
):
    conn = built_small_cache.conn
    expected = published(conn).memberships
    conn.execute("delete from group_memberships where id = (select min(id) from group_memberships)")

    # a run diffs only what changed in the source: the edit stays, and the accounting test
    # says so
    refused = dbt_project.build(expect_success=False)
    assert "assert_every_source_element_is_accounted_for" in failure_messages(refused)
    assert len(published(conn).memberships) == len(expected) - 1

    dbt_project.build(variables={"reconcile_memberships": True})

    assert published(conn).memberships == expected


def test_runs_never_write_to_cache_entries(
    dbt_project: DbtProject, small_legacy_cache: LegacyCache
):
    conn = small_legacy_cache.conn
    conn.execute("vacuum freeze cache_entries")
    before = cache_fingerprint(conn)

    dbt_project.build()
    dbt_project.build()
    dbt_project.build(args=("--full-refresh",))
    dbt_project.build(target="prod", expect_success=False)  # PROD is empty: the run fails

    assert cache_fingerprint(conn) == before


def test_an_environment_run_never_touches_another_environment(dbt_project: DbtProject):
    conn = dbt_project.connect()
    cache = LegacyCache(conn).create()
    small_cache(cache, "DEFAULT")
    small_cache(cache, "PROD")
    dbt_project.build("default")
    dbt_project.build("prod")
    default_rows = conn.execute(DEFAULT_ROWS_SQL).fetchall()
    cache.replace("etf_holdings", "SPY", {"holdings": ["AAPL"]}, "PROD")
    cache.remove("theme_definition", "crypto_miners", "PROD")

    dbt_project.build("prod")

    assert conn.execute(DEFAULT_ROWS_SQL).fetchall() == default_rows
    assert conn.execute(
        "select count(*) from group_memberships m join definition_groups g on g.id = m.group_id"
        " where g.environment = 'PROD' and g.name = 'SPY'"
    ).fetchone() == (1,)


def test_an_environment_without_entries_fails_loudly(dbt_project: DbtProject):
    conn = dbt_project.connect()
    cache = LegacyCache(conn).create()
    cache.add("etf_holdings", "SPY", "SPDR", {"holdings": ["AAPL"]}, "dev")
    cache.add("etf_holdings", "QQQ", "Invesco", {"holdings": ["AAPL"]}, "prod ")

    result = dbt_project.build("test", expect_success=False)

    message = failure_messages(result)
    assert "assert_environment_has_source_entries" in message
    reasons = conn.execute(
        "select reason, count(*) from public_ops_test.migration_exceptions group by 1"
    ).fetchall()
    assert dict(reasons) == {"invalid_environment": 1}
    published_groups = conn.execute(
        "select count(*) from public.definition_groups where environment = 'TEST'"
    ).fetchone()
    assert published_groups == (0,)
