"""The cut-over (issue 31, docs/design.md §13): the compatibility relation serves every entry
the migration read in the legacy shape, from the two tables; the round trip holds for the
sample (exactly, as JSON) and for a hostile cache (minus exactly what the exceptions record);
``shadow`` replays the application's reads and explains every difference, and reports a
difference seeded into the tables with its entry, exiting 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from support.databases import PgServer
from support.dbt_project import BuiltSample, DbtProject
from support.legacy_cache import LegacyCache
from support.parity import assert_parity, dbt_test_statuses
from support.round_trip import assert_round_trip, round_trip_problems
from support.shell import run_command, user_environment

ROUND_TRIP_TEST = "assert_compat_values_round_trip"
UNIT_TEST = "compat_values_rebuild_each_legacy_shape_from_the_tables"
COMPAT = "public_compat_default.cache_entries"


def _shadow(settings: Any, work: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    report = work / "shadow.json"
    done = run_command(
        [sys.executable, "-m", "validation", "shadow", "--target", "default",
         "--json", str(report), *args],
        user_environment(settings, work),
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.returncode, json.loads(report.read_text(encoding="utf-8")), done.stdout


def test_the_sample_round_trips_exactly(built_sample: BuiltSample) -> None:
    assert built_sample.unit_test_statuses.get(UNIT_TEST) == "pass", built_sample.unit_test_statuses
    with built_sample.project.connect() as conn:
        assert_round_trip(conn, "DEFAULT", exact=True)
        statuses = dict(
            conn.execute(f"select migration_status, count(*) from {COMPAT} group by 1").fetchall()
        )
        # every published entry (64), and the three the sample's migration leaves out: the
        # superseded market_leaders and the 'dev' and 'staging' rows
        assert statuses == {"migrated": 64, "not_migrated": 3}, statuses
        spy = conn.execute(
            f"select c.value = l.value from {COMPAT} as c join public.cache_entries as l"
            " on l.type = c.type and l.key = c.key and l.environment = c.environment"
            " where c.key = 'SPY'"
        ).fetchone()
        assert spy == (True,)


def test_a_reader_is_pointed_at_the_compatibility_relation_by_search_path(
    built_sample: BuiltSample,
) -> None:
    with built_sample.project.connect() as conn:
        legacy = conn.execute(
            "select value from cache_entries where type = 'etf_universe' and key = 'theme_crypto'"
            " and environment = 'DEFAULT'"
        ).fetchone()
        conn.execute("set search_path = public_compat_default")
        served = conn.execute(
            "select value from cache_entries where type = 'etf_universe' and key = 'theme_crypto'"
            " and environment = 'DEFAULT'"
        ).fetchone()
    assert legacy is not None and served == legacy


def test_shadow_explains_every_difference_in_the_sample(
    built_sample: BuiltSample, tmp_path: Path
) -> None:
    code, report, out = _shadow(built_sample.settings, tmp_path)
    assert code == 0, out
    assert report["unexplained"] == 0
    assert report["compared"]["etf"] == 24 and report["compared"]["compat"] == 64
    reasons = {(d["entry_key"], d["reason"]) for d in report["differences"]}
    assert ("market_leaders", "entry left out, recorded as superseded_entry") in reasons
    code, sampled, _ = _shadow(built_sample.settings, tmp_path, "--sample", "3")
    assert code == 0 and sampled["compared"]["etf"] == 3


def test_a_mismatch_seeded_into_the_tables_is_reported_with_its_entry(
    built_sample: BuiltSample,
    pg_server: PgServer,
    dbt_work_dir: Path,
    _session_manifests: dict[str, Any],
    tmp_path: Path,
) -> None:
    name = f"{built_sample.settings['PGDATABASE']}_seeded"
    pg_server.clone_database(built_sample.settings["PGDATABASE"], name)
    try:
        project = DbtProject(pg_server.database_settings(name), dbt_work_dir, _session_manifests)
        with project.connect() as conn:
            conn.execute(
                "delete from group_memberships where symbol = 'AAPL' and group_id ="
                " (select id from definition_groups where type = 'ETF' and name = 'SPY')"
            )
            conn.execute(
                "update group_memberships set weight = 0.5 where symbol = 'XOM' and group_id ="
                " (select id from definition_groups where type = 'ETF' and name = 'XLE')"
            )
        code, report, out = _shadow(project.settings, tmp_path)
        assert code == 1, out
        unexplained = {
            (d["form"], d["entry_key"], d["symbol"])
            for d in report["differences"]
            if not d["explained"]
        }
        assert ("etf", "SPY", "AAPL") in unexplained and ("symbol", "SPY", "AAPL") in unexplained
        assert ("etf", "XLE", "XOM") in unexplained
        assert "UNEXPLAINED etf: etf_holdings 'SPY' (group ETF SPY) symbol AAPL" in out
        # A build keeps the compatibility relation as the migration's changes left it: a hand
        # edit is none (the next build of the tables puts the rows back), so it still gives
        # the legacy values back.
        result = project.build(args=("--select", "cache_entries_compat", ROUND_TRIP_TEST))
        assert dbt_test_statuses(result)[ROUND_TRIP_TEST] == "pass"
        # a mismatch seeded into the compatibility relation itself: SPY's first holding gone
        with project.connect() as conn:
            conn.execute(
                "update public_compat_default.cache_entries set value = value #- '{holdings,0}'"
                " where type = 'etf_holdings' and key = 'SPY'"
            )
        result = project.build(args=("--select", ROUND_TRIP_TEST), expect_success=False)
        assert dbt_test_statuses(result)[ROUND_TRIP_TEST] == "fail"
        with project.connect() as conn:
            problems = round_trip_problems(conn, "DEFAULT")
        assert any(p.startswith("etf_holdings 'SPY'") for p in problems), problems
        code, report, out = _shadow(project.settings, tmp_path)
        assert ("compat", "SPY") in {
            (d["form"], d["entry_key"]) for d in report["differences"] if not d["explained"]
        }, out
    finally:
        pg_server.drop_database(name)


def _hostile_cache(cache: LegacyCache) -> None:
    add = cache.add
    add("etf_holdings", "SPY", "SPDR", {
        "holdings": [" aapl", "MSFT", {"ticker": "nvda", "weight": 0.05},
                     {"symbol": "XOM", "weight_pct": 2.5, "position": 9, "note": "kept"},
                     "MSFT", 42, "not a symbol!", {"symbol": "JPM", "weight": 7}],
        "symbols": ["CVX"], "total_holdings": 8, "source": "vendor"},
    )  # fmt: skip
    add("etf_holdings", " QQQ ", "Invesco QQQ", {"holdings": ["AAPL"]})
    add("etf_holdings", "DIA", "old DIA", {"holdings": ["AAPL"]})
    add("etf_holdings", "DIA", "DIA", {"holdings": ["MSFT", "AAPL"]})
    add("etf_holdings", "\u200b", "invisible", {"holdings": ["AAPL"]})
    add("etf_holdings", "BAD", "bare array", ["AAPL"])
    add("ETF_HOLDINGS", "XLE", "Energy", {"holdings": ["XOM", "CVX"]}, environment="default ")
    add("theme_definition", "ai", "AI", {"description": "AI", "symbols": ["NVDA", "nvda"],
                                         "legacy_source": "x", "source": "y"})  # fmt: skip
    add("theme_definition", "clean_energy", "Clean", {"symbols": ["ENPH"]})
    add("stock_universe", "legacy_leaders", "Leaders",
        {"stocks": [{"ticker": "AAPL"}, {"ticker": "IBM"}]})  # fmt: skip
    add("etf_universe", "etf_crypto", "Crypto", {"etfs": [{"ticker": "IBIT", "name": "iShares"}]})
    add("sector_industry_map", "energy", "Energy", {"industries": ["Oil"], "description": "E"})
    add("stock_metadata", "XOM", "Exxon", {"sector": "Energy", "industry": "Oil"})
    add("stock_metadata", "CVX", "Chevron", {"sector": "energy"})
    add("stock_metadata", "ZZZ", "Nowhere", {"sector": "Nowhere"})
    add("theme_definition", "crypto", "Crypto", {"symbols": ["COIN"]}, environment="dev")


def test_a_hostile_cache_round_trips_minus_its_exceptions(
    dbt_project: DbtProject, tmp_path: Path
) -> None:
    conn = dbt_project.connect()
    cache = LegacyCache(conn).create()
    _hostile_cache(cache)
    statuses = dbt_test_statuses(dbt_project.build())
    assert statuses[ROUND_TRIP_TEST] == "pass", statuses
    # another writer: a group holding a name an entry wants, and a member in SPY
    conn.execute(
        "insert into definition_groups (name, type, environment) values ('growth', 'THEME',"
        " 'DEFAULT')"
    )
    conn.execute(
        "insert into group_memberships (group_id, symbol) select id, 'HAND' from"
        " definition_groups where type = 'ETF' and name = 'SPY'"
    )
    cache.add("theme_definition", "growth", "Growth", {"symbols": ["AAPL"]})
    statuses = dbt_test_statuses(dbt_project.build())
    assert statuses[ROUND_TRIP_TEST] == "pass", statuses
    assert_parity(conn, "DEFAULT")
    assert_round_trip(conn, "DEFAULT")
    found = conn.execute(
        f"select type, key, migration_status, is_exact_legacy_value, value from {COMPAT}"
    ).fetchall()
    rows = {(t, k): (status, exact, value) for t, k, status, exact, value in found
            if status != "not_migrated"}  # fmt: skip
    not_migrated = {(t, k) for t, k, status, _, value in found
                    if status == "not_migrated" and value is None}  # fmt: skip
    # left out as a whole: listed, with no value (the older DIA is superseded, the newer kept)
    assert {
        ("etf_holdings", "\u200b"),
        ("etf_holdings", "BAD"),
        ("etf_holdings", "DIA"),
        ("theme_definition", "growth"),
        ("theme_definition", "crypto"),
    } <= not_migrated
    assert rows[("etf_holdings", "DIA")] == ("migrated", True, {"holdings": ["MSFT", "AAPL"]})
    # SPY lacks exactly its excepted elements (the second MSFT, 42, the bad symbol), keeps
    # JPM without its unusable weight, and another writer's HAND is not part of the entry
    status, exact, spy = rows[("etf_holdings", "SPY")]
    assert status == "migrated_without_some_elements" and not exact
    assert spy["holdings"] == [
        "AAPL", "MSFT", {"symbol": "NVDA", "weight": 0.05},
        {"symbol": "XOM", "weight": 0.025, "note": "kept", "position": 9}, "JPM", "CVX",
    ]  # fmt: skip
    assert spy["source"] == "vendor" and spy["total_holdings"] == 8
    assert rows[("theme_definition", "ai")][2] == {
        "description": "AI", "symbols": ["NVDA"], "legacy_source": "x", "source": "y",
    }  # fmt: skip
    assert rows[("etf_universe", "etf_crypto")][1] is True
    assert rows[("stock_universe", "legacy_leaders")][1] is True
    code, report, out = _shadow(dbt_project.settings, tmp_path)
    assert code == 0, out
    explained = {(d["form"], d["entry_key"], d["symbol"]) for d in report["differences"]}
    assert ("etf", "SPY", "HAND") in explained  # another writer's row
    assert ("etf", "SPY", "MSFT") in explained  # the duplicate
    assert ("sector", "energy", "ZZZ") not in explained  # names no sector: not a member
