"""The sample legacy cache_entries: generator (pure Python) and COPY loader (real PostgreSQL)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.conninfo import make_conninfo
from support.databases import PgServer

from validation.errors import UserFacingError
from validation.sample import (
    BASE_TIME,
    CacheEntry,
    copy_rows,
    ensure_table,
    generate_entries,
    iter_copy_chunks,
    load_sample,
    write_entries,
)

# The real figures of docs/design.md §1, written out again on purpose (not imported).
ETF_HOLDINGS = {
    "VTI": 3508, "IWV": 2564, "IWM": 1943, "IWB": 1009, "VOO": 505, "SPY": 504, "MDY": 401,
    "VTV": 316, "SCHG": 195, "VUG": 160, "QQQ": 102, "XLI": 75, "XLK": 72, "XLV": 60, "XLF": 60,
    "XLY": 55, "ARKK": 46, "XLP": 33, "XLRE": 30, "XLB": 30, "XLU": 30, "DIA": 30, "XLE": 25,
    "XLC": 25,
}  # fmt: skip
THEME_SIZES = {
    "crypto_miners": 9, "robotics_automation": 17, "drones_uav": 13, "gold_miners": 12,
    "silver_miners": 9, "space_technology": 11, "clean_energy": 12, "battery_storage": 11,
    "ai_machine_learning": 14, "quantum_computing": 7, "genomics_biotech": 10,
    "cloud_computing": 12, "cybersecurity": 11, "five_g_infrastructure": 10,
    "electric_vehicles": 12, "autonomous_vehicles": 10, "water_technology": 9,
    "agriculture_technology": 10, "nuclear_energy": 10, "rare_earth_minerals": 10,
}  # fmt: skip
SECTORS = {
    "information_technology": "Information Technology",
    "health_care": "Health Care",
    "financials": "Financials",
    "consumer_discretionary": "Consumer Discretionary",
    "communication_services": "Communication Services",
    "industrials": "Industrials",
    "consumer_staples": "Consumer Staples",
    "energy": "Energy",
    "utilities": "Utilities",
    "real_estate": "Real Estate",
    "materials": "Materials",
}
SECTOR_ETFS = {
    "XLK": "Information Technology",
    "XLV": "Health Care",
    "XLF": "Financials",
    "XLY": "Consumer Discretionary",
    "XLC": "Communication Services",
    "XLI": "Industrials",
    "XLP": "Consumer Staples",
    "XLE": "Energy",
    "XLU": "Utilities",
    "XLRE": "Real Estate",
    "XLB": "Materials",
}
AAPL_ETFS = {"DIA", "IWB", "IWV", "QQQ", "SCHG", "SPY", "VOO", "VTI", "VUG", "XLK"}
VALID_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,9}$")
MAPPED_TYPES = {
    "etf_holdings",
    "theme_definition",
    "sector_industry_map",
    "stock_metadata",
    "stock_universe",
    "etf_universe",
}


@pytest.fixture(scope="module")
def entries() -> list[CacheEntry]:
    return generate_entries()


def of_type(entries: list[CacheEntry], kind: str, environment: str = "DEFAULT") -> list[CacheEntry]:
    return [e for e in entries if e.type == kind and e.environment == environment]


def etfs(entries: list[CacheEntry]) -> dict[str, list[str]]:
    return {e.key: e.value["holdings"] for e in of_type(entries, "etf_holdings")}


def themes(entries: list[CacheEntry]) -> dict[str, list[str]]:
    return {e.key: e.value["symbols"] for e in of_type(entries, "theme_definition")}


def stocks(entries: list[CacheEntry]) -> dict[str, dict[str, Any]]:
    return {e.key: e.value for e in of_type(entries, "stock_metadata")}


def universe_members(value: Any) -> list[str]:
    if isinstance(value, list):
        return value
    if "symbols" in value:
        return value["symbols"]
    if "stocks" in value:
        return [s["ticker"] for s in value["stocks"]]
    return [s["ticker"] for s in value["etfs"]]


# --- generator: figures ------------------------------------------------------------------------


def test_rows_per_type_at_scale_1(entries: list[CacheEntry]) -> None:
    counts = Counter(e.type for e in entries if e.environment == "DEFAULT")
    assert counts["sector_industry_map"] == 11
    assert counts["etf_holdings"] == 24
    assert counts["theme_definition"] == 20
    assert counts["stock_metadata"] == len(stocks(entries))
    assert counts["stock_universe"] >= 3
    assert counts["etf_universe"] >= 3
    assert {"cache_config", "app_settings", "stock_stats"} <= set(counts)


def test_etf_holdings_match_the_real_counts(entries: list[CacheEntry]) -> None:
    held = etfs(entries)
    assert {k: len(v) for k, v in held.items()} == ETF_HOLDINGS
    for entry in of_type(entries, "etf_holdings"):
        holdings = entry.value["holdings"]
        assert len(set(holdings)) == len(holdings), f"{entry.key} holds a symbol twice"
        assert all(isinstance(s, str) and VALID_SYMBOL.match(s) for s in holdings)
        assert entry.value["total_holdings"] == len(holdings)
        assert entry.value["last_updated"] == "2025-12-05T10:00:00"
        assert entry.value["data_source"].endswith("_holdings.csv")
        assert entry.name and entry.name != entry.key
    spy = next(e for e in of_type(entries, "etf_holdings") if e.key == "SPY")
    assert spy.name == "SPDR S&P 500 ETF Trust"
    assert spy.value["data_source"] == "spy_holdings.csv"
    thresholds = [e.value.get("market_cap_threshold") for e in of_type(entries, "etf_holdings")]
    assert thresholds.count(5_000_000_000) >= 18
    assert thresholds.count(None) >= 1


def test_etf_holdings_are_plausible(entries: list[CacheEntry]) -> None:
    held = {k: set(v) for k, v in etfs(entries).items()}
    meta = stocks(entries)
    for etf, sector in SECTOR_ETFS.items():
        assert {meta[s]["sector"] for s in held[etf]} == {sector}, etf
        assert held[etf] <= held["SPY"], etf
    assert held["SPY"] < held["VOO"] <= held["IWB"] <= held["IWV"]
    assert held["DIA"] <= held["SPY"]
    assert not held["IWB"] & held["IWM"]
    assert not held["MDY"] & held["VOO"]
    assert not held["VUG"] & held["VTV"]
    assert max(held, key=lambda k: len(held[k])) == "VTI"
    assert len(held["VTI"] & held["IWB"]) == len(held["IWB"])
    for big in ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "BRK.B", "JPM"):
        assert big in held["SPY"], big


def test_aapl_is_in_exactly_the_real_ten_etfs(entries: list[CacheEntry]) -> None:
    holders = {k for k, v in etfs(entries).items() if "AAPL" in v}
    assert holders == AAPL_ETFS
    assert set(stocks(entries)["AAPL"]["member_of_etfs"]) == AAPL_ETFS
    assert stocks(entries)["AAPL"]["sector"] == "Information Technology"


def test_themes_match_the_real_counts(entries: list[CacheEntry]) -> None:
    found = themes(entries)
    assert {k: len(v) for k, v in found.items()} == THEME_SIZES
    for entry in of_type(entries, "theme_definition"):
        assert set(entry.value) == {
            "description",
            "symbols",
            "selection_criteria",
            "related_themes",
            "last_updated",
        }
        assert len(set(entry.value["symbols"])) == len(entry.value["symbols"])
    crypto = next(e for e in of_type(entries, "theme_definition") if e.key == "crypto_miners")
    assert crypto.name == "Bitcoin & Cryptocurrency Miners"
    assert {"MARA", "RIOT", "CLSK"} <= set(crypto.value["symbols"])


def test_sectors_and_industries(entries: list[CacheEntry]) -> None:
    sectors = of_type(entries, "sector_industry_map")
    assert {e.key: e.name for e in sectors} == SECTORS
    industries = [i for e in sectors for i in e.value["industries"]]
    assert len(industries) == len(set(industries)) == 53
    meta = stocks(entries)
    per_sector = Counter(v["sector"] for v in meta.values())
    for entry in sectors:
        assert 4 <= len(entry.value["industries"]) <= 5
        assert entry.value["stock_count"] == per_sector[entry.name]
        assert len(entry.value["representative_stocks"]) == 5
        assert all(meta[s]["sector"] == entry.name for s in entry.value["representative_stocks"])
        assert entry.value["description"]
        assert entry.value["last_updated"] == "2025-12-05T10:00:00"


def test_symbol_universe_and_memberships(entries: list[CacheEntry]) -> None:
    held, found = etfs(entries), themes(entries)
    symbols = {s for v in held.values() for s in v} | {s for v in found.values() for s in v}
    assert 3_600 <= len(symbols) <= 3_800
    etf_memberships = sum(map(len, held.values()))
    assert etf_memberships == sum(ETF_HOLDINGS.values()) == 11_778
    assert 11_500 <= etf_memberships + sum(map(len, found.values())) <= 12_100
    assert {"AAPL", "MSFT", "NVDA", "BRK.B", "BF-B", "MARA"} <= symbols
    assert all(VALID_SYMBOL.match(s) for s in symbols)
    generated = [s for s in symbols if re.fullmatch(r"[A-Z]{1,5}", s)]
    assert len(generated) > 3_000


def test_every_stock_has_consistent_metadata(entries: list[CacheEntry]) -> None:
    held, found, meta = etfs(entries), themes(entries), stocks(entries)
    symbols = {s for v in held.values() for s in v} | {s for v in found.values() for s in v}
    assert set(meta) == symbols
    industries = {
        e.name: set(e.value["industries"]) for e in of_type(entries, "sector_industry_map")
    }
    member_of_etfs: dict[str, set[str]] = {s: set() for s in meta}
    member_of_themes: dict[str, set[str]] = {s: set() for s in meta}
    for etf, members in held.items():
        for s in members:
            member_of_etfs[s].add(etf)
    for theme, members in found.items():
        for s in members:
            member_of_themes[s].add(theme)
    for symbol, value in meta.items():
        assert value["sector"] in industries, symbol
        assert value["industry"] in industries[value["sector"]], symbol
        assert isinstance(value["market_cap"], int) and value["market_cap"] > 0
        assert value["is_validated"] is True
        assert set(value["member_of_etfs"]) == member_of_etfs[symbol], symbol
        assert set(value["member_of_themes"]) == member_of_themes[symbol], symbol
    names = {e.key: e.name for e in of_type(entries, "stock_metadata")}
    assert names["AAPL"] == "Apple Inc."
    assert names["BRK.B"].startswith("Berkshire Hathaway")


def test_universes_in_the_three_legacy_shapes(entries: list[CacheEntry]) -> None:
    for kind, old_key in (("stock_universe", "stocks"), ("etf_universe", "etfs")):
        rows = of_type(entries, kind)
        assert len(rows) >= 3
        shapes = set()
        for row in rows:
            if isinstance(row.value, list):
                shapes.add("array")
            elif "symbols" in row.value:
                shapes.add("symbols")
                assert row.value["count"] == len(row.value["symbols"])
            else:
                assert set(row.value) == {old_key}
                shapes.add(old_key)
            assert universe_members(row.value)
        assert shapes == {"array", "symbols", old_key}
    stock_keys = {e.key for e in of_type(entries, "stock_universe")}
    etf_keys = {e.key for e in of_type(entries, "etf_universe")}
    assert "theme_crypto" in stock_keys & etf_keys
    crypto_etfs = next(e for e in of_type(entries, "etf_universe") if e.key == "theme_crypto")
    assert all(set(item) == {"ticker", "name"} for item in crypto_etfs.value["etfs"])
    sp500 = next(e for e in of_type(entries, "stock_universe") if e.key == "index_sp500")
    assert isinstance(sp500.value, list) and len(sp500.value) == 505


def test_one_key_is_stored_under_two_names(entries: list[CacheEntry]) -> None:
    keys = Counter((e.type, e.key) for e in entries if e.environment == "DEFAULT")
    twice = [k for k, n in keys.items() if n > 1]
    assert twice == [("stock_universe", "market_leaders")]
    rows = [e for e in of_type(entries, "stock_universe") if e.key == "market_leaders"]
    assert {e.name for e in rows} == {"Market Leaders", "Market Leaders (legacy)"}
    assert rows[0].value != rows[1].value
    current = next(e for e in rows if e.name == "Market Leaders")
    legacy = next(e for e in rows if e.name != "Market Leaders")
    assert current.updated_at is not None and legacy.updated_at is not None
    assert current.updated_at > legacy.updated_at


def test_timestamps(entries: list[CacheEntry]) -> None:
    assert all(e.created_at.utcoffset() == timedelta(0) for e in entries)
    assert all(e.created_at <= BASE_TIME for e in entries)
    null_updated = [e for e in entries if e.updated_at is None]
    assert len(entries) // 9 <= len(null_updated) <= len(entries) // 5
    assert {"etf_holdings", "theme_definition", "stock_metadata"} <= {e.type for e in null_updated}
    for e in entries:
        if e.updated_at is not None:
            assert e.updated_at.utcoffset() == timedelta(0)
            assert e.created_at <= e.updated_at <= BASE_TIME


def test_legacy_noise_only_in_default(entries: list[CacheEntry]) -> None:
    noise = [e for e in entries if e.environment not in {"DEFAULT", "TEST", "UAT", "PROD"}]
    assert sorted((e.environment, e.type) for e in noise) == [
        ("dev", "theme_definition"),
        ("staging", "stock_universe"),
    ]
    assert entries[-2:] == noise  # loaded last
    quiet = generate_entries(include_legacy_noise=False)
    assert quiet == entries[:-2]
    prod = generate_entries("PROD")
    assert {e.environment for e in prod} == {"PROD"}
    assert [(e.type, e.name, e.key, e.value) for e in prod] == [
        (e.type, e.name, e.key, e.value) for e in quiet
    ]
    assert copy_rows(quiet, environment="PROD") == copy_rows(prod)


def test_column_limits_and_legacy_unique_key(entries: list[CacheEntry]) -> None:
    for e in entries:
        assert 0 < len(e.type) <= 50 and 0 < len(e.name) <= 100 and 0 < len(e.key) <= 100
        assert 0 < len(e.environment) <= 10
    identities = [(e.type, e.name, e.key, e.environment) for e in entries]
    assert len(set(identities)) == len(identities)


def test_unknown_arguments_are_refused() -> None:
    with pytest.raises(UserFacingError, match="environment"):
        generate_entries("development")
    with pytest.raises(UserFacingError, match="environment"):
        generate_entries("prod")
    for scale in (0, -1, True):
        with pytest.raises(UserFacingError, match="scale"):
            generate_entries(scale=scale)


# --- generator: determinism and scale -------------------------------------------------------


def test_same_arguments_give_the_same_bytes(entries: list[CacheEntry]) -> None:
    again = generate_entries()
    assert again == entries
    assert copy_rows(again) == copy_rows(entries)


def test_same_bytes_in_other_processes(entries: list[CacheEntry]) -> None:
    """No set or dict iteration order leaks into the output (PYTHONHASHSEED varies)."""
    script = (
        "import hashlib, sys; from validation.sample import copy_rows, generate_entries; "
        "sys.stdout.write(hashlib.sha256(copy_rows(generate_entries(scale=2))).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            cwd=Path(__file__).resolve().parent.parent,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(digests) == 1


def test_another_seed_gives_other_data(entries: list[CacheEntry]) -> None:
    other = generate_entries(seed=60)
    assert copy_rows(other) != copy_rows(entries)
    # the real figures hold for every seed
    assert {k: len(v) for k, v in etfs(other).items()} == ETF_HOLDINGS
    assert {k: len(v) for k, v in themes(other).items()} == THEME_SIZES
    assert {k for k, v in etfs(other).items() if "AAPL" in v} == AAPL_ETFS


def test_scale_2_doubles_etfs_themes_and_symbols(entries: list[CacheEntry]) -> None:
    doubled = generate_entries(scale=2)
    held, found, meta = etfs(doubled), themes(doubled), stocks(doubled)
    assert len(held) == 48 and len(found) == 40
    assert len(meta) == 2 * len(stocks(entries))
    assert sorted(map(len, held.values())) == sorted(2 * list(ETF_HOLDINGS.values()))
    copies = set(held) - set(ETF_HOLDINGS)
    assert all(re.fullmatch(r"[A-Z]{3,4}", k) for k in copies)
    assert not copies & set(meta)
    assert set(found) - set(THEME_SIZES) == {f"{k}_2" for k in THEME_SIZES}
    symbols = {s for v in held.values() for s in v} | {s for v in found.values() for s in v}
    assert set(meta) == symbols
    base_rows = {(e.type, e.key): e.value for e in of_type(entries, "etf_holdings")}
    assert all(held[k] == base_rows["etf_holdings", k]["holdings"] for k in ETF_HOLDINGS)
    sector_counts = {e.key: e.value["stock_count"] for e in of_type(doubled, "sector_industry_map")}
    assert sum(sector_counts.values()) == len(meta)


# --- COPY text format ---------------------------------------------------------------------------


def unescape(field: str) -> str | None:
    if field == "\\N":
        return None
    table = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
    return re.sub(r"\\(.)", lambda m: table[m.group(1)], field, flags=re.DOTALL)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\0")))
def test_copy_text_escaping_round_trips(text: str) -> None:
    entry = CacheEntry("t", text or "x", text or "y", {"v": text}, "DEFAULT", text, BASE_TIME, None)
    data = copy_rows([entry]).decode()
    assert data.endswith("\n") and data.count("\n") == 1
    fields = data[:-1].split("\t")
    assert len(fields) == 8
    assert unescape(fields[1]) == (text or "x")
    assert unescape(fields[5]) == text
    assert json.loads(unescape(fields[3]) or "") == {"v": text}
    assert fields[7] == "\\N"


def test_copy_chunks_and_naive_timestamps(entries: list[CacheEntry]) -> None:
    chunks = list(iter_copy_chunks(entries, rows_per_chunk=1_000))
    assert len(chunks) == -(-len(entries) // 1_000)
    assert b"".join(chunks) == copy_rows(entries)
    naive = CacheEntry("t", "n", "k", {}, "DEFAULT", None, datetime(2025, 1, 1), None)
    with pytest.raises(ValueError, match="timezone"):
        copy_rows([naive])


# --- database -------------------------------------------------------------------------------


@pytest.fixture
def pg_databases(pg_server: PgServer) -> Iterator[Callable[[], str]]:
    """A factory of fresh databases (sample_test_<random>) on the server under test."""
    created: list[str] = []

    def create() -> str:
        name = f"sample_test_{uuid.uuid4().hex[:12]}"
        settings = pg_server.recreate_database(name)
        created.append(name)
        return make_conninfo(
            host=settings["PGHOST"], port=settings["PGPORT"], user=settings["PGUSER"], dbname=name
        )

    yield create
    for name in created:
        pg_server.drop_database(name)


@pytest.fixture
def pg_dsn(pg_databases: Callable[[], str]) -> str:
    return pg_databases()


CONTENT_HASH = sql.SQL(
    """select count(*), md5(string_agg(concat_ws('|', {id}, type, name, key, value::text,
         environment, coalesce(description, '<null>'), extract(epoch from created_at),
         coalesce(extract(epoch from updated_at)::text, '<null>')), ',' order by id))
       from {table} where environment = any(%s)"""
)


def content_hash(
    conn: psycopg.Connection[Any],
    environments: list[str],
    *,
    schema: str = "public",
    with_ids: bool = False,
) -> tuple[int, str]:
    query = CONTENT_HASH.format(
        id=sql.SQL("id") if with_ids else sql.Literal(""),
        table=sql.Identifier(schema, "cache_entries"),
    )
    row = conn.execute(query, (environments,)).fetchone()
    assert row is not None
    return row[0], row[1]


def counts(conn: psycopg.Connection[Any], schema: str = "public") -> Counter[tuple[str, str]]:
    rows = conn.execute(
        sql.SQL("select environment, type, count(*) from {} group by 1, 2").format(
            sql.Identifier(schema, "cache_entries")
        )
    ).fetchall()
    return Counter({(env, kind): n for env, kind, n in rows})


def expected_counts(environment: str, **kwargs: Any) -> Counter[tuple[str, str]]:
    return Counter((e.environment, e.type) for e in generate_entries(environment, **kwargs))


def test_ensure_table_creates_the_legacy_shape(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        ensure_table(conn)
        ensure_table(conn)  # idempotent
        columns = conn.execute(
            """select column_name, data_type, character_maximum_length, is_nullable,
                      column_default
                 from information_schema.columns
                where table_schema = 'public' and table_name = 'cache_entries'
                order by ordinal_position"""
        ).fetchall()
        constraints = conn.execute(
            """select conname, contype, pg_get_constraintdef(oid)
                 from pg_constraint
                where conrelid = 'public.cache_entries'::regclass and contype <> 'n'
                order by conname"""
        ).fetchall()
    assert columns == [
        ("id", "integer", None, "NO", "nextval('cache_entries_id_seq'::regclass)"),
        ("type", "character varying", 50, "NO", None),
        ("name", "character varying", 100, "NO", None),
        ("key", "character varying", 100, "NO", None),
        ("value", "jsonb", None, "NO", None),
        ("environment", "character varying", 10, "NO", None),
        ("description", "text", None, "YES", None),
        ("created_at", "timestamp with time zone", None, "YES", "CURRENT_TIMESTAMP"),
        ("updated_at", "timestamp with time zone", None, "YES", None),
    ]
    assert constraints == [
        ("cache_entries_pkey", "p", "PRIMARY KEY (id)"),
        ("unique_cache_entry", "u", "UNIQUE (type, name, key, environment)"),
    ]


def test_load_matches_the_generator(pg_dsn: str) -> None:
    messages: list[str] = []
    with psycopg.connect(pg_dsn) as conn:
        summary = load_sample(conn, progress=messages.append)
        assert counts(conn) == expected_counts("DEFAULT")
        aapl = conn.execute(
            "select value from cache_entries where type = 'stock_metadata' and key = 'AAPL'"
        ).fetchone()
    assert aapl is not None and set(aapl[0]["member_of_etfs"]) == AAPL_ETFS
    generated = generate_entries()
    assert summary.total_rows == len(generated)
    assert summary.rows_by_type == dict(Counter(e.type for e in generated))
    assert summary.rows_by_environment == dict(Counter(e.environment for e in generated))
    assert summary.deleted_rows == 0
    assert summary.elapsed_seconds > 0
    assert any("copying" in m for m in messages)
    assert "rows loaded" in str(summary)


def test_loading_twice_gives_the_same_content(pg_databases: Callable[[], str]) -> None:
    first, second = pg_databases(), pg_databases()
    everything = ["DEFAULT", "dev", "staging"]
    as_of = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # stamps included: the same base time
    with psycopg.connect(first) as conn:
        load_sample(conn, as_of=as_of)
        once = content_hash(conn, everything)
        once_with_ids = content_hash(conn, everything, with_ids=True)
        summary = load_sample(conn, as_of=as_of, replace=True)  # its rows, noise included
        assert summary.deleted_rows == once[0]
        assert content_hash(conn, everything) == once
        assert counts(conn) == expected_counts("DEFAULT")
    with psycopg.connect(second) as conn:
        load_sample(conn, as_of=as_of)
        assert content_hash(conn, everything, with_ids=True) == once_with_ids


def test_a_load_is_stamped_back_from_its_own_time(pg_dsn: str) -> None:
    """By default the newest row stamp is the moment of loading (a fresh load is fresh to
    dbt source freshness); every other stamp keeps its distance from it, and nothing else
    depends on the time."""
    later = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    stamps = "select coalesce(updated_at, created_at) from cache_entries order by id"
    with psycopg.connect(pg_dsn) as conn:
        before = datetime.now(UTC).replace(microsecond=0)
        load_sample(conn)
        after = datetime.now(UTC)
        now_stamps = [row[0] for row in conn.execute(stamps)]
        values = conn.execute("select type, key, value from cache_entries order by id").fetchall()
        load_sample(conn, as_of=later, replace=True)
        later_stamps = [row[0] for row in conn.execute(stamps)]
    assert before <= max(now_stamps) <= after
    assert max(later_stamps) == later
    shift = max(now_stamps) - later
    assert [s - shift for s in now_stamps] == later_stamps
    generated = generate_entries(as_of=later)
    assert [(e.type, e.key, e.value) for e in generated] == [tuple(v) for v in values]
    with pytest.raises(UserFacingError, match="timezone-aware"):
        generate_entries(as_of=datetime(2026, 1, 2))


def test_loading_prod_leaves_default_untouched(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        load_sample(conn)
        default = content_hash(conn, ["DEFAULT", "dev", "staging"])
        load_sample(conn, environments=("PROD",))
        assert content_hash(conn, ["DEFAULT", "dev", "staging"]) == default
        assert counts(conn) == expected_counts("DEFAULT") + expected_counts("PROD")
        prod = conn.execute(
            """select count(*) from cache_entries p join cache_entries d
                 using (type, name, key, value)
                where p.environment = 'PROD' and d.environment = 'DEFAULT'"""
        ).fetchone()
    assert prod is not None and prod[0] == len(generate_entries("PROD"))


def test_several_environments_and_rows_it_does_not_own(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        ensure_table(conn)
        conn.execute(
            """insert into cache_entries (type, name, key, value, environment)
               values ('theme_definition', 'Other', 'other_theme', '{}', 'dev'),
                      ('etf_holdings', 'Mine', 'MINE', '{"holdings": []}', 'UAT')"""
        )
        conn.commit()
        with pytest.raises(UserFacingError, match=r"1 'UAT' rows; nothing was loaded"):
            load_sample(conn, environments=("TEST", "UAT", "TEST"))
        conn.rollback()
        assert counts(conn) == Counter({("dev", "theme_definition"): 1, ("UAT", "etf_holdings"): 1})
        summary = load_sample(conn, environments=("TEST", "UAT", "TEST"), replace=True)
        assert summary.environments == ("TEST", "UAT")
        found = counts(conn)
        assert found[("dev", "theme_definition")] == 1  # not the sample's: kept
        assert found[("UAT", "etf_holdings")] == 24  # the UAT environment was replaced
        assert found == (
            expected_counts("TEST")
            + expected_counts("UAT")
            + Counter({("dev", "theme_definition"): 1})
        )


def test_other_schema(pg_dsn: str) -> None:
    schema = 'Legacy "Cache" Data'
    with psycopg.connect(pg_dsn) as conn:
        summary = load_sample(conn, schema=schema, environments=("UAT",))
        assert counts(conn, schema) == expected_counts("UAT")
        assert summary.schema == schema
        public = conn.execute("select to_regclass('public.cache_entries')").fetchone()
    assert public == (None,)


def test_without_replace_an_existing_load_is_refused(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        load_sample(conn, environments=("TEST",))
        before = content_hash(conn, ["TEST"])
        with pytest.raises(UserFacingError, match=r"already holds [0-9,]+ 'TEST' rows.*--replace"):
            load_sample(conn, environments=("TEST",))
        conn.rollback()
        assert content_hash(conn, ["TEST"]) == before


def test_the_legacy_noise_rows_of_somebody_else_are_not_replaced_by_default(pg_dsn: str) -> None:
    """A 'dev' row with the key of a sample noise row is somebody's: the load refuses."""
    noise = next(e for e in generate_entries(include_legacy_noise=True) if e.environment == "dev")
    with psycopg.connect(pg_dsn) as conn:
        ensure_table(conn)
        write_entries(conn, [noise])
        conn.commit()
        with pytest.raises(UserFacingError, match="1 'dev' rows"):
            load_sample(conn)
        conn.rollback()
        assert counts(conn) == Counter({("dev", noise.type): 1})


def test_write_entries_round_trips_awkward_text(pg_dsn: str) -> None:
    awkward = 'tab\there, newline\nthere, cr\r, backslash \\ and \\N, quote " é ✓ 📈'
    entries = [
        CacheEntry(
            "stock_universe",
            awkward[:100],
            "odd\\key",
            {"symbols": ["AAPL", awkward], "nested": {"x": [1.5, None, True]}},
            "TEST",
            awkward,
            datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            None,
        ),
        CacheEntry("themes", "\\N", "\\.", [], "TEST", "\\N", BASE_TIME, BASE_TIME),
    ]
    with psycopg.connect(pg_dsn) as conn:
        ensure_table(conn)
        assert write_entries(conn, entries) == 2
        rows = conn.execute(
            """select type, name, key, value, environment, description, created_at, updated_at
                 from cache_entries order by id"""
        ).fetchall()
    assert [CacheEntry(*row) for row in rows] == entries
    assert rows[0][6] == datetime(2025, 1, 2, 1, 4, 5, tzinfo=UTC)
