"""Hostile legacy data (issue 15): seven classes of input real caches accumulate, each with
a named scenario.  Every scenario builds a small cache, then checks what a first build, an
incremental run and a ``--full-refresh`` make of it: no value stops a run, no SECTOR member
goes stale, no member list or source key is dropped silently, the older entry (or a row a
legacy script inserted) keeps a contested name, and invisible names and look-alike types
are reported.

The scenarios that change the source between builds (classes 1, 2, 4 and 5) each have a
database of their own.  Those that only add values and build three times (classes 3, 6 and
7) share one: a cache holding all of their values at once, as a real one would, built three
times (`build_once`, the module's template); each test reads its own entries in a copy.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from support.dbt_project import DbtProject
from support.legacy_cache import LegacyCache, small_cache
from support.parity import assert_parity, dbt_test_statuses

# unit tests mock their inputs and the generic column tests repeat the contracts: skipped to
# keep each scenario short; the singular tests (the reconciliation identity) run every build
BUILD_ARGS = ("--exclude", "resource_type:unit_test", "test_type:generic")
IDENTITY_TEST = "assert_every_source_element_is_accounted_for"


def _build(project: DbtProject, *, full_refresh: bool = False) -> dict[str, str]:
    args = (*BUILD_ARGS, "--full-refresh") if full_refresh else BUILD_ARGS
    statuses = dbt_test_statuses(project.build("default", args=args))
    assert statuses.get(IDENTITY_TEST) == "pass", statuses
    return statuses


def _three_builds(project: DbtProject, conn: psycopg.Connection) -> None:
    """First build, an incremental run, a --full-refresh: each must end consistent."""
    _build(project)
    assert_parity(conn, "DEFAULT")
    _build(project)
    _build(project, full_refresh=True)
    assert_parity(conn, "DEFAULT")


def _exceptions(conn: psycopg.Connection, entry_id: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select element_position, reason, severity, detail"
        " from public_ops_default.migration_exceptions"
        " where cache_entry_id = %s order by element_position nulls first, reason",
        (entry_id,),
    ).fetchall()


def _reasons(conn: psycopg.Connection, entry_id: int) -> set[tuple[Any, str, str]]:
    return {(p, r, s) for p, r, s, _ in _exceptions(conn, entry_id)}


def _group(conn: psycopg.Connection, source_type: str, key: str) -> tuple[Any, ...] | None:
    return conn.execute(
        "select id, name, type, metadata, last_update from definition_groups"
        " where environment = 'DEFAULT' and metadata -> 'source' ->> 'type' = %s"
        " and metadata -> 'source' ->> 'key' = %s",
        (source_type, key),
    ).fetchone()


def _members(conn: psycopg.Connection, group_id: int) -> dict[str, Any]:
    return dict(
        conn.execute(
            "select symbol, metadata from group_memberships where group_id = %s", (group_id,)
        ).fetchall()
    )


def _sector_members(conn: psycopg.Connection) -> set[tuple[str, str]]:
    rows = conn.execute(
        "select g.name, m.symbol from group_memberships m join definition_groups g"
        " on g.id = m.group_id where g.environment = 'DEFAULT' and g.type = 'SECTOR'"
    ).fetchall()
    return {(name, symbol) for name, symbol in rows}


def _symbol_sectors(conn: psycopg.Connection) -> dict[str, str | None]:
    return dict(
        conn.execute(
            "select symbol, sector from symbol_memberships where environment = 'DEFAULT'"
        ).fetchall()
    )


SMALL_CACHE_SECTORS = {
    ("information_technology", "AAPL"),
    ("information_technology", "MSFT"),
    ("information_technology", "NVDA"),
    ("energy", "XOM"),
    ("energy", "CVX"),
}


@pytest.fixture
def cache(dbt_project: DbtProject) -> tuple[LegacyCache, psycopg.Connection]:
    conn = dbt_project.connect()
    return small_cache(LegacyCache(conn).create()), conn


INVISIBLE_KEYS = {
    "tab": "\t",
    "newline": "\n",
    "nbsp": "\u00a0",
    "zero_width_space": "\u200b",
    "byte_order_mark": "\ufeff",
    "mixed": " \u2003\u200d\t",
}


def build_once(project: DbtProject) -> None:
    """The module's template (conftest.module_template), read by the tests of classes 3, 6
    and 7: the small cache plus every value of those classes, each under its own key, then a
    first build, an incremental run and a --full-refresh, each passing the identity test."""
    with project.connect() as conn:
        legacy = small_cache(LegacyCache(conn).create())
        add = legacy.add
        # fmt: off
        # 3. every member list is read
        add("stock_universe", "two_lists", "Two lists", {
            "symbols": ["AAPL", "MSFT"], "stocks": [{"ticker": "MSFT"}, {"ticker": "NVDA"}]})
        add("etf_universe", "etfs_and_symbols", "Two ETF lists", {
            "etfs": [{"ticker": "SPY"}], "symbols": ["QQQ"]})
        add("etf_holdings", "TWO_NAMES", "Two names", {"holdings": [
            {"symbol": "AAPL", "ticker": "MSFT"}, {"symbol": "NVDA", "ticker": "nvda"}]})
        add("etf_holdings", "HOLD_SYM", "Holdings and symbols", {
            "holdings": ["AAPL"], "symbols": ["MSFT"]})
        add("theme_definition", "three_lists", "Three lists", {
            "symbols": ["AAPL"], "stocks": [{"ticker": "MSFT"}], "holdings": ["NVDA", "aapl"],
            "description": "Three lists"})
        # 5. names as a person reads them: look-alikes are one name (the first added, the
        # oldest, keeps it); names that differ only by letter case are two groups
        for key in LOOK_ALIKE_KEYS:
            add(*key, f"Look-alike {key[1]!r}", {"holdings" if key[0] == "etf_holdings"
                                                 else "symbols": ["AAPL"]})
        add("theme_definition", "Clean_Energy", "Clean energy", {"symbols": ["ENPH"]})
        add("theme_definition", "clean_energy", "clean energy", {"symbols": ["FSLR"]})
        # 6. computed fields never lose to source fields
        add("etf_holdings", "OWNKEYS", "Own keys", {
            "holdings": [{"symbol": "AAPL", "position": 99}, {"symbol": "MSFT", "position": "top"}],
            "source": "vendor feed", "legacy_source": {"file": "old.csv"}, "data_source": "x.csv"})
        # 7. invisible names and look-alike types
        for label, key in INVISIBLE_KEYS.items():
            add("etf_holdings", key, f"Invisible {label}", {"holdings": ["AAPL"]})
        add("sector_industry_map", "\u200b", "Invisible", {"description": "x"})
        add("ETF_HOLDINGS", "LOOK1", "Look-alike", {"holdings": ["AAPL"]})
        add("etf_holdings ", "LOOK2", "Look-alike", {"holdings": ["MSFT"]})
        add("Stock_Metadata", "AMZN", "Amazon", {"sector": "Information Technology"})
        # fmt: on
        _three_builds(project, conn)


# (type, key): the first of each family is the oldest and keeps the name
LOOK_ALIKE_KEYS = (
    ("etf_holdings", "WS"),
    ("etf_holdings", "WS "),
    ("etf_holdings", " WS"),
    ("etf_holdings", "\u00a0WS\t"),
    ("etf_holdings", "ZWX"),
    ("etf_holdings", "ZW\u200bX"),
    ("theme_definition", "caf\u00e9"),  # NFC: precomposed e-acute
    ("theme_definition", "cafe\u0301"),  # NFD: e and a combining acute accent
)


def _entry(conn: psycopg.Connection, cache_type: str, key: str) -> int:
    """The id of the template's cache entry (type, key) (copies keep the ids)."""
    row = conn.execute(
        "select id from cache_entries where type = %s and key = %s", (cache_type, key)
    ).fetchone()
    assert row is not None, (cache_type, key)
    return int(row[0])


# --- 1. no value stops a run ----------------------------------------------------------------

BAD_DATES: dict[str, Any] = {
    "D_OFFSET": "2025-12-05T10:00:00+16:00",
    "D_MINUTES": "2025-12-05T10:00:00+05:75",
    "D_FEB30": "2025-02-30",
    "D_NUMBER": 20251205,
    "D_OBJECT": {"date": "2025-12-05"},
    "D_ARRAY": ["2025-12-05"],
    "D_YEAR0": "0000-01-01",
}


def test_bad_last_updated_values_are_warnings_not_aborts(
    dbt_project: DbtProject, cache: tuple[LegacyCache, psycopg.Connection]
) -> None:
    legacy, conn = cache
    ids = {
        key: legacy.add(
            "etf_holdings", key, f"Fund {key}", {"holdings": ["AAPL"], "last_updated": v}
        )
        for key, v in BAD_DATES.items()
    }
    good = legacy.add(
        "etf_holdings",
        "D_GOOD",
        "Fund",
        {"holdings": ["AAPL"], "last_updated": "2025-12-05T10:00:00+15:59"},
    )
    _build(dbt_project)
    for key, entry_id in ids.items():
        assert _reasons(conn, entry_id) == {(None, "invalid_last_updated", "warning")}, key
        row = conn.execute(
            "select coalesce(updated_at, created_at) at time zone 'UTC' from cache_entries"
            " where id = %s",
            (entry_id,),
        ).fetchone()
        group = _group(conn, "etf_holdings", key)
        assert group is not None and row is not None, key
        assert group[4] == row[0], f"{key}: last_update falls back to the row's own stamp"
    assert _reasons(conn, good) == set()
    # an unrelated change in the same run as the bad value is published
    legacy.update("etf_holdings", "XLE", {"holdings": ["XOM", "CVX", "OXY"]})
    legacy.update(
        "etf_holdings",
        "D_OFFSET",
        {"holdings": ["MSFT"], "last_updated": "2025-12-05T10:00:00-16:30"},
    )
    _build(dbt_project)
    xle = _group(conn, "etf_holdings", "XLE")
    assert xle is not None and set(_members(conn, xle[0])) == {"XOM", "CVX", "OXY"}
    _build(dbt_project, full_refresh=True)
    assert _reasons(conn, ids["D_OFFSET"]) == {(None, "invalid_last_updated", "warning")}


# --- 2. SECTOR members follow their stocks --------------------------------------------------


def test_stock_rekeyed_in_place_leaves_no_stale_sector_member(
    dbt_project: DbtProject, cache: tuple[LegacyCache, psycopg.Connection]
) -> None:
    _legacy, conn = cache
    _build(dbt_project)
    assert _sector_members(conn) == SMALL_CACHE_SECTORS
    conn.execute(
        "update cache_entries set key = 'OXY' where type = 'stock_metadata' and key = 'XOM'"
    )
    _build(dbt_project)
    expected = SMALL_CACHE_SECTORS - {("energy", "XOM")} | {("energy", "OXY")}
    assert _sector_members(conn) == expected
    assert _symbol_sectors(conn).get("XOM") is None
    assert _symbol_sectors(conn)["OXY"] == "energy"
    _build(dbt_project)
    _build(dbt_project, full_refresh=True)
    assert _sector_members(conn) == expected


def test_stock_deleted_then_full_refresh_leaves_no_stale_sector_member(
    dbt_project: DbtProject, cache: tuple[LegacyCache, psycopg.Connection]
) -> None:
    legacy, conn = cache
    _build(dbt_project)
    legacy.remove("stock_metadata", "CVX")
    _build(dbt_project, full_refresh=True)
    assert _sector_members(conn) == SMALL_CACHE_SECTORS - {("energy", "CVX")}
    _build(dbt_project)
    assert _sector_members(conn) == SMALL_CACHE_SECTORS - {("energy", "CVX")}


@pytest.mark.parametrize(
    "edit",
    ["environment = 'PROD'", "type = 'stock_metadata_old'", "key = 'OXY'"],
    ids=["moved_to_prod", "moved_to_other_type", "rekeyed"],
)
def test_stock_changed_in_place_before_full_refresh_leaves_no_stale_sector_member(
    dbt_project: DbtProject, cache: tuple[LegacyCache, psycopg.Connection], edit: str
) -> None:
    _legacy, conn = cache
    _build(dbt_project)
    conn.execute(f"update cache_entries set {edit} where type = 'stock_metadata' and key = 'XOM'")
    _build(dbt_project, full_refresh=True)
    expected = SMALL_CACHE_SECTORS - {("energy", "XOM")}
    if "OXY" in edit:
        expected |= {("energy", "OXY")}
    assert _sector_members(conn) == expected
    _build(dbt_project)
    assert _sector_members(conn) == expected
    assert _symbol_sectors(conn).get("XOM") is None


# --- 3. every member list is read -----------------------------------------------------------


def test_every_member_list_of_a_value_is_read(module_copy: psycopg.Connection) -> None:
    conn = module_copy
    both = _entry(conn, "stock_universe", "two_lists")
    group = _group(conn, "stock_universe", "two_lists")
    assert group is not None
    assert set(_members(conn, group[0])) == {"AAPL", "MSFT", "NVDA"}
    reasons = _reasons(conn, both)
    assert (3, "duplicate_in_group", "error") in reasons
    assert (None, "combined_member_lists", "warning") in reasons
    detail = next(d for _, r, _, d in _exceptions(conn, both) if r == "combined_member_lists")
    assert "symbols" in detail and "stocks" in detail
    group = _group(conn, "etf_universe", "etfs_and_symbols")
    assert group is not None
    assert set(_members(conn, group[0])) == {"SPY", "QQQ"}
    etfs = _entry(conn, "etf_universe", "etfs_and_symbols")
    assert (None, "combined_member_lists", "warning") in _reasons(conn, etfs)
    assert "etfs" not in group[3] and "symbols" not in group[3]


def test_every_member_list_of_etf_and_theme_values_is_read(
    module_copy: psycopg.Connection,
) -> None:
    conn = module_copy
    etf = _group(conn, "etf_holdings", "HOLD_SYM")
    assert etf is not None
    assert set(_members(conn, etf[0])) == {"AAPL", "MSFT"}
    assert "symbols" not in etf[3] and "holdings" not in etf[3]
    detail = next(
        d
        for _, r, _, d in _exceptions(conn, _entry(conn, "etf_holdings", "HOLD_SYM"))
        if r == "combined_member_lists"
    )
    assert "(holdings, symbols)" in detail
    theme_entry = _entry(conn, "theme_definition", "three_lists")
    theme = _group(conn, "theme_definition", "three_lists")
    assert theme is not None
    assert set(_members(conn, theme[0])) == {"AAPL", "MSFT", "NVDA"}
    # the theme's own list first, then the others in the documented order
    assert _members(conn, theme[0])["NVDA"]["position"] == 3
    assert _reasons(conn, theme_entry) == {
        (None, "combined_member_lists", "warning"),
        (4, "duplicate_in_group", "error"),
    }


def test_look_alike_names_are_one_name_that_the_oldest_entry_keeps(
    module_copy: psycopg.Connection,
) -> None:
    conn = module_copy
    families = {"WS": LOOK_ALIKE_KEYS[:4], "ZWX": LOOK_ALIKE_KEYS[4:6], "café": LOOK_ALIKE_KEYS[6:]}
    for shown, (holder, *rivals) in families.items():
        group = _group(conn, *holder)
        assert group is not None, holder
        names = conn.execute(
            "select name from definition_groups where environment = 'DEFAULT' and type = %s"
            " and normalize(btrim(replace(name, U&'\\200B', ''), E' \\t\\u00a0'), nfc) = %s",
            (group[2], shown),
        ).fetchall()
        assert names == [(group[1],)], f"one group reads as {shown!r}, not {names}"
        for rival in rivals:
            assert _group(conn, *rival) is None, rival
            found = _exceptions(conn, _entry(conn, *rival))
            assert [(p, r, s) for p, r, s, _ in found] == [(None, "name_collision", "error")]
            assert f"cache id {_entry(conn, *holder)}" in found[0][3], found[0][3]


def test_names_that_differ_only_by_case_are_two_groups_that_name_each_other(
    module_copy: psycopg.Connection,
) -> None:
    conn = module_copy
    upper = _entry(conn, "theme_definition", "Clean_Energy")
    lower = _entry(conn, "theme_definition", "clean_energy")
    for entry, other in ((upper, lower), (lower, upper)):
        assert _group(
            conn, "theme_definition", "Clean_Energy" if entry == upper else "clean_energy"
        )
        found = _exceptions(conn, entry)
        assert [(p, r, s) for p, r, s, _ in found] == [(None, "name_case_variant", "warning")]
        assert f"cache id {other}" in found[0][3]


def test_symbol_and_ticker_that_disagree_keep_symbol_and_warn(
    module_copy: psycopg.Connection,
) -> None:
    conn = module_copy
    group = _group(conn, "etf_holdings", "TWO_NAMES")
    assert group is not None
    assert set(_members(conn, group[0])) == {"AAPL", "NVDA"}
    found = _exceptions(conn, _entry(conn, "etf_holdings", "TWO_NAMES"))
    assert [(p, r, s) for p, r, s, _ in found] == [(1, "conflicting_ticker", "warning")]
    assert "MSFT" in found[0][3]


# --- 4. and 5. who keeps a contested name ---------------------------------------------------


def test_a_later_arrival_does_not_take_a_name_from_an_existing_group(
    dbt_project: DbtProject, cache: tuple[LegacyCache, psycopg.Connection]
) -> None:
    legacy, conn = cache
    legacy.add("etf_universe", "late", "Late ETFs", {"symbols": ["SPY", "QQQ"]})
    _build(dbt_project)
    before = _group(conn, "etf_universe", "late")
    assert before is not None and before[1] == "etf_late"
    newcomer = legacy.add("stock_universe", "etf_late", "Newcomer", ["AAPL"])
    for full_refresh in (False, False, True):
        _build(dbt_project, full_refresh=full_refresh)
        after = _group(conn, "etf_universe", "late")
        assert after is not None and after[0] == before[0], "the older entry keeps its id"
        assert set(_members(conn, after[0])) == {"SPY", "QQQ"}
        assert _group(conn, "stock_universe", "etf_late") is None
        found = _exceptions(conn, newcomer)
        assert [(p, r, s) for p, r, s, _ in found] == [(None, "name_collision", "error")]
        assert "etf_universe" in found[0][3] and "late" in found[0][3]


def test_a_row_inserted_by_a_legacy_script_keeps_its_name(
    dbt_project: DbtProject, cache: tuple[LegacyCache, psycopg.Connection]
) -> None:
    legacy, conn = cache
    _build(dbt_project)
    conn.execute(
        "insert into definition_groups (name, type, description, metadata, environment)"
        " values ('NEWETF', 'ETF', 'inserted by hand', '{\"origin\": \"script\"}', 'DEFAULT')"
    )
    legacy_row = conn.execute("select * from definition_groups where name = 'NEWETF'").fetchone()
    entry = legacy.add("etf_holdings", "NEWETF", "New ETF", {"holdings": ["AAPL"]})
    legacy.update("etf_holdings", "XLE", {"holdings": ["XOM"]})
    for full_refresh in (False, False, True):
        _build(dbt_project, full_refresh=full_refresh)
        assert conn.execute("select * from definition_groups where name = 'NEWETF'").fetchall() == [
            legacy_row
        ]
        found = _exceptions(conn, entry)
        assert [(p, r, s) for p, r, s, _ in found] == [(None, "name_collision", "error")]
        assert str(legacy_row[0]) in found[0][3]
    xle = _group(conn, "etf_holdings", "XLE")
    assert xle is not None and set(_members(conn, xle[0])) == {"XOM"}, "the rest still runs"


# --- 6. computed fields never lose to source fields -----------------------------------------


def test_computed_position_and_provenance_are_never_overwritten(
    dbt_project: DbtProject, module_copy: psycopg.Connection
) -> None:
    group = _group(module_copy, "etf_holdings", "OWNKEYS")
    assert group is not None
    members = _members(module_copy, group[0])
    assert members["AAPL"]["position"] == 1 and members["MSFT"]["position"] == 2
    assert json.dumps(members["AAPL"]).count("99") == 1, "the element's own position is kept"
    assert "top" in json.dumps(members["MSFT"])
    metadata = group[3]
    assert metadata["source"]["type"] == "etf_holdings"
    text = json.dumps(metadata)
    assert "vendor feed" in text and "old.csv" in text and "x.csv" in text
    from validation.query import ask

    answer = ask(dbt_project.settings, "etf", ["OWNKEYS"], environment="DEFAULT")
    assert [row[0] for row in answer.rows] == ["AAPL", "MSFT"]


# --- 7. invisible names and look-alike types ------------------------------------------------


def test_invisible_keys_are_invalid_names(module_copy: psycopg.Connection) -> None:
    conn = module_copy
    for label, key in INVISIBLE_KEYS.items():
        entry = _entry(conn, "etf_holdings", key)
        assert _reasons(conn, entry) == {(None, "invalid_name", "error")}, label
    sector = _entry(conn, "sector_industry_map", "\u200b")
    assert _reasons(conn, sector) == {(None, "invalid_name", "error")}
    names = [r[0] for r in conn.execute("select name from definition_groups").fetchall()]
    assert all(name.strip() and name.isprintable() for name in names), names


def test_look_alike_types_are_mapped_with_a_warning(module_copy: psycopg.Connection) -> None:
    conn = module_copy
    for cache_type, key, symbol in (
        ("ETF_HOLDINGS", "LOOK1", "AAPL"),
        ("etf_holdings ", "LOOK2", "MSFT"),
    ):
        group = _group(conn, "etf_holdings", key)
        assert group is not None and group[2] == "ETF", key
        assert set(_members(conn, group[0])) == {symbol}
        assert _reasons(conn, _entry(conn, cache_type, key)) == {
            (None, "respelled_type", "warning")
        }
    assert ("information_technology", "AMZN") in _sector_members(conn)
    stock = _entry(conn, "Stock_Metadata", "AMZN")
    assert _reasons(conn, stock) == {(None, "respelled_type", "warning")}
