"""The migration of the realistic sample: the spec's success criteria, on a real PostgreSQL."""

from __future__ import annotations

import pytest
from support.dbt_project import BuiltSample
from support.legacy_cache import table_fingerprint


def _scalar(sample: BuiltSample, query: str, *params: object) -> object:
    with sample.connect() as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def test_the_unit_tests_run_and_pass_in_the_sample_build(built_sample: BuiltSample):
    """The one build of the session that runs dbt's unit tests (the others leave them out:
    their mocked inputs make the outcome a function of the SQL alone)."""
    statuses = built_sample.unit_test_statuses
    assert len(statuses) >= 6, statuses
    assert set(statuses.values()) == {"pass"}, statuses


def test_groups_per_type_match_the_spec(built_sample: BuiltSample):
    with built_sample.connect() as conn:
        counts = dict(
            conn.execute(
                "select type, count(*) from definition_groups where environment = 'DEFAULT'"
                " group by type"
            ).fetchall()
        )
        universes = conn.execute(
            "select count(*) from cache_entries where environment = 'DEFAULT'"
            " and type in ('stock_universe', 'etf_universe')"
        ).fetchone()
        superseded = conn.execute(
            "select count(*) from public_ops_default.migration_exceptions"
            " where reason = 'superseded_entry' and cache_type like '%universe'"
        ).fetchone()
    assert counts["ETF"] == 24
    assert counts["THEME"] == 20
    assert counts["SECTOR"] == 11
    assert universes is not None and superseded is not None
    assert counts["CUSTOM"] == universes[0] - superseded[0]  # one CUSTOM group per universe entry


def test_about_3700_distinct_symbols_are_members(built_sample: BuiltSample):
    distinct = _scalar(
        built_sample,
        "select count(distinct symbol) from group_memberships m"
        " join definition_groups g on g.id = m.group_id"
        " where g.environment = 'DEFAULT' and g.type in ('ETF', 'THEME')",
    )
    assert 3600 <= int(distinct) <= 3800  # type: ignore[call-overload]


def test_no_membership_is_an_orphan(built_sample: BuiltSample):
    orphans = _scalar(
        built_sample,
        "select count(*) from group_memberships m"
        " where not exists (select 1 from definition_groups g where g.id = m.group_id)",
    )
    assert orphans == 0


def test_aapl_is_in_exactly_its_ten_etfs(built_sample: BuiltSample):
    with built_sample.connect() as conn:
        etfs = [
            name
            for (name,) in conn.execute(
                "select g.name from definition_groups g join group_memberships m"
                " on m.group_id = g.id where m.symbol = 'AAPL' and g.type = 'ETF'"
                " and g.environment = 'DEFAULT' order by g.name"
            ).fetchall()
        ]
    assert etfs == ["DIA", "IWB", "IWV", "QQQ", "SCHG", "SPY", "VOO", "VTI", "VUG", "XLK"]


@pytest.mark.parametrize(
    ("etf", "holdings"),
    [("VTI", 3508), ("IWV", 2564), ("SPY", 504), ("QQQ", 102), ("XLK", 72), ("XLC", 25)],
)
def test_etf_memberships_equal_the_legacy_holdings(
    built_sample: BuiltSample, etf: str, holdings: int
):
    members = _scalar(
        built_sample,
        "select count(*) from group_memberships m join definition_groups g on g.id = m.group_id"
        " where g.name = %s and g.type = 'ETF' and g.environment = 'DEFAULT'",
        etf,
    )
    assert members == holdings


def test_every_stock_with_a_sector_is_in_that_sector_with_its_industry(built_sample: BuiltSample):
    missing = _scalar(
        built_sample,
        """
        select count(*)
        from cache_entries s
        join cache_entries sector
          on sector.type = 'sector_industry_map' and sector.environment = 'DEFAULT'
         and lower(s.value ->> 'sector') in (lower(sector.name), lower(sector.key))
        where s.type = 'stock_metadata' and s.environment = 'DEFAULT'
          and not exists (
            select 1 from group_memberships m join definition_groups g on g.id = m.group_id
            where g.type = 'SECTOR' and g.environment = 'DEFAULT' and g.name = sector.key
              and m.symbol = upper(trim(s.key))
              and m.metadata ->> 'industry' is not distinct from s.value ->> 'industry')
        """,
    )
    stocks = _scalar(
        built_sample,
        "select count(*) from cache_entries where type = 'stock_metadata'"
        " and environment = 'DEFAULT'",
    )
    assert int(stocks) > 3000  # type: ignore[call-overload]
    assert missing == 0


def test_a_second_build_changes_no_row(built_sample: BuiltSample):
    with built_sample.connect() as conn:
        before = [table_fingerprint(conn, t) for t in ("definition_groups", "group_memberships")]
        built_sample.project.build("default")
        after = [table_fingerprint(conn, t) for t in ("definition_groups", "group_memberships")]
    assert after == before
