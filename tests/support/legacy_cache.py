"""Test helpers: write a small legacy cache_entries, read back what the migration published."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from validation.sample import ensure_table

BASE_TIME = datetime(2025, 12, 5, 10, 0, tzinfo=UTC)


@dataclass
class LegacyCache:
    """Edits the legacy table the way the old loaders do (delete + re-insert, NULL updated_at)."""

    conn: psycopg.Connection
    clock: datetime = BASE_TIME

    def create(self) -> LegacyCache:
        ensure_table(self.conn)
        return self

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def add(
        self,
        type_: str,
        key: str,
        name: str,
        value: Any,
        environment: str = "DEFAULT",
        *,
        updated: bool = True,
    ) -> int:
        stamp = self.tick()
        row = self.conn.execute(
            "insert into public.cache_entries"
            " (type, name, key, value, environment, created_at, updated_at)"
            " values (%s, %s, %s, %s::jsonb, %s, %s, %s) returning id",
            (type_, name, key, json.dumps(value), environment, stamp, stamp if updated else None),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def replace(
        self,
        type_: str,
        key: str,
        value: Any,
        environment: str = "DEFAULT",
        *,
        name: str | None = None,
        updated: bool = True,
    ) -> int:
        """Delete every row of (type, key, environment) and insert one with the new value."""
        old = self.conn.execute(
            "delete from public.cache_entries where type = %s and key = %s and environment = %s"
            " returning name",
            (type_, key, environment),
        ).fetchall()
        assert old, f"no {type_} {key} in {environment}"
        return self.add(type_, key, name or old[0][0], value, environment, updated=updated)

    def update(self, type_: str, key: str, value: Any, environment: str = "DEFAULT") -> None:
        """Rewrite the value of (type, key, environment) in place: same id, new row version."""
        updated = self.conn.execute(
            "update public.cache_entries set value = %s::jsonb, updated_at = %s"
            " where type = %s and key = %s and environment = %s",
            (json.dumps(value), self.tick(), type_, key, environment),
        ).rowcount
        assert updated, f"no {type_} {key} in {environment}"

    def remove(self, type_: str, key: str, environment: str = "DEFAULT") -> None:
        self.conn.execute(
            "delete from public.cache_entries where type = %s and key = %s and environment = %s",
            (type_, key, environment),
        )

    def move(self, type_: str, key: str, source: str, destination: str) -> None:
        self.conn.execute(
            "update public.cache_entries set environment = %s, updated_at = %s"
            " where type = %s and key = %s and environment = %s",
            (destination, self.tick(), type_, key, source),
        )

    def rows(self) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "select type, name, key, value, environment, description, created_at, updated_at"
            " from public.cache_entries order by id"
        ).fetchall()

    def copy_to(self, other: psycopg.Connection) -> None:
        """Give another database exactly this cache content (ids aside)."""
        ensure_table(other)
        other.execute("truncate public.cache_entries")
        with other.cursor() as cur:
            cur.executemany(
                "insert into public.cache_entries"
                " (type, name, key, value, environment, description, created_at, updated_at)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(*row[:3], json.dumps(row[3]), *row[4:]) for row in self.rows()],
            )


def small_cache(cache: LegacyCache, environment: str = "DEFAULT") -> LegacyCache:
    """A compact cache with every legacy shape the migration reads (for change sequences)."""
    add = cache.add
    add(
        "etf_holdings", "SPY", "SPDR S&P 500 ETF Trust",
        {"holdings": ["AAPL", "MSFT", "NVDA", "XOM"], "total_holdings": 4,
         "market_cap_threshold": 5000000000, "last_updated": "2025-12-05T10:00:00",
         "data_source": "spy_holdings.csv"},
        environment,
    )  # fmt: skip
    add(
        "etf_holdings", "QQQ", "Invesco QQQ Trust",
        {"holdings": [{"symbol": "AAPL", "weight": 0.12}, {"symbol": "MSFT", "weight": 0.1},
                      {"ticker": "NVDA", "weight_pct": 8.5}],
         "last_updated": "2025-12-05T10:00:00"},
        environment,
    )  # fmt: skip
    add(
        "etf_holdings",
        "XLE",
        "Energy Select Sector SPDR",
        {"holdings": ["XOM", "CVX"]},
        environment,
    )
    add(
        "theme_definition", "crypto_miners", "Bitcoin & Cryptocurrency Miners",
        {"description": "Bitcoin miners", "symbols": ["MARA", "RIOT", "CLSK"],
         "related_themes": ["theme_crypto"]},
        environment, updated=False,
    )  # fmt: skip
    add(
        "theme_definition", "ai_machine_learning", "AI & Machine Learning",
        {"description": "AI", "symbols": ["NVDA", "MSFT"]}, environment,
    )  # fmt: skip
    for key, name in (("information_technology", "Information Technology"), ("energy", "Energy")):
        add(
            "sector_industry_map", key, name,
            {"industries": ["Software", "Semiconductors"] if key != "energy" else ["Oil & Gas"],
             "description": f"{name} sector", "stock_count": 2},
            environment,
        )  # fmt: skip
    stocks = {
        "AAPL": ("Information Technology", "Hardware"),
        "MSFT": ("information_technology", "Software"),
        "NVDA": ("Information Technology", "Semiconductors"),
        "XOM": ("Energy", "Oil & Gas"),
        "CVX": ("ENERGY", "Oil & Gas"),
    }
    for symbol, (sector, industry) in stocks.items():
        add(
            "stock_metadata", symbol, f"{symbol} Inc.",
            {"sector": sector, "industry": industry, "is_validated": True}, environment,
        )  # fmt: skip
    add("stock_universe", "index_sp500", "S&P 500", ["AAPL", "MSFT", "NVDA", "XOM"], environment)
    add(
        "stock_universe", "market_leaders", "Market Leaders",
        {"symbols": ["AAPL", "MSFT"], "count": 2}, environment,
    )  # fmt: skip
    add(
        "stock_universe", "theme_crypto", "Crypto stocks",
        {"stocks": [{"ticker": "MARA"}, {"ticker": "RIOT"}]}, environment, updated=False,
    )  # fmt: skip
    add(
        "etf_universe", "theme_crypto", "Crypto ETFs",
        {"etfs": [{"ticker": "BITO", "name": "ProShares Bitcoin Strategy"}]}, environment,
    )  # fmt: skip
    add("etf_universe", "tracked_etfs", "Tracked ETFs", {"symbols": ["SPY", "QQQ"]}, environment)
    add("cache_config", "refresh", "Refresh settings", {"interval": 3600}, environment)
    return cache


# --- reading what was published -------------------------------------------------------------

# A group's identity: the entry the migration built it for, as its ledger recorded it
# (docs/design.md §10); another writer's row (not in the ledger) by its name instead.  A
# database built before the ledger (an earlier main, in the upgrade test) has none yet:
# there, the rows whose metadata.source names a type and key, as that release decided.
_LEDGER_SOURCE_TYPE = "l.source_type"
_LEDGER_SOURCE_KEY = "coalesce(l.source_key, 'legacy row: ' || {g}name)"
_LEDGER_JOIN = " left join public.migration_ledger_groups l on l.group_id = {g}id"
_IS_MIGRATED = (
    "coalesce({g}metadata -> 'source' ->> 'type' is not null"
    " and {g}metadata -> 'source' ->> 'key' is not null, false)"
)
_SOURCE_TYPE = f"case when {_IS_MIGRATED} then {{g}}metadata -> 'source' ->> 'type' end"
_SOURCE_KEY = (
    f"case when {_IS_MIGRATED} then {{g}}metadata -> 'source' ->> 'key'"
    " else 'legacy row: ' || {g}name end"
)


def _identity(ledger: bool) -> str:
    """The group's (source type, source key) columns, from the ledger when there is one."""
    if ledger:
        return f"{_LEDGER_SOURCE_TYPE}, {_LEDGER_SOURCE_KEY.format(g='g.')}"
    return f"{_SOURCE_TYPE.format(g='g.')}, {_SOURCE_KEY.format(g='g.')}"


def _group_state_sql(ledger: bool) -> str:
    return f"""
select g.environment, g.type, {_identity(ledger)},
       g.id, g.name, g.description, g.metadata, g.liquidity_filter, g.last_update,
       g.created_at, g.updated_at
from public.definition_groups g{_LEDGER_JOIN.format(g="g.") if ledger else ""}
"""


def _membership_state_sql(ledger: bool) -> str:
    return f"""
select g.environment, g.type, {_identity(ledger)},
       m.symbol, m.id, m.weight, m.metadata, m.added_at, m.updated_at
from public.group_memberships m join public.definition_groups g on g.id = m.group_id
{_LEDGER_JOIN.format(g="g.") if ledger else ""}
"""


def has_ledger(conn: psycopg.Connection) -> bool:
    row = conn.execute("select to_regclass('public.migration_ledger_groups')").fetchone()
    return row is not None and row[0] is not None


@dataclass(frozen=True)
class Published:
    """The two tables, keyed by source identity, split into content, ids and timestamps."""

    groups: dict[tuple[str, ...], tuple[Any, ...]]
    memberships: dict[tuple[str, ...], tuple[Any, ...]]
    group_ids: dict[tuple[str, ...], int]
    membership_ids: dict[tuple[str, ...], int]
    stamps: dict[tuple[str, ...], tuple[Any, ...]]


def published(conn: psycopg.Connection) -> Published:
    ledger = has_ledger(conn)
    groups, group_ids, stamps = {}, {}, {}
    for env, gtype, stype, skey, gid, *content, created, updated in conn.execute(
        _group_state_sql(ledger)
    ).fetchall():
        identity = (env, gtype, stype, skey)
        groups[identity] = tuple(content)
        group_ids[identity] = gid
        stamps[("group", *identity)] = (created, updated)
    memberships, membership_ids = {}, {}
    for env, gtype, stype, skey, symbol, mid, weight, metadata, added, updated in conn.execute(
        _membership_state_sql(ledger)
    ).fetchall():
        identity = (env, gtype, stype, skey, symbol)
        memberships[identity] = (weight, metadata)
        membership_ids[identity] = mid
        stamps[("membership", *identity)] = (added, updated)
    return Published(groups, memberships, group_ids, membership_ids, stamps)


def table_fingerprint(conn: psycopg.Connection, table: str) -> str:
    """md5 over every column of every row, in id order (any change shows)."""
    query = sql.SQL(
        "select md5(coalesce(string_agg(t::text, '|' order by t.id), '')) from {} t"
    ).format(sql.Identifier("public", table))
    row = conn.execute(query).fetchone()
    assert row is not None
    return str(row[0])


def cache_fingerprint(conn: psycopg.Connection) -> str:
    """Every column of every cache row plus its xmin, so even a no-op UPDATE would show."""
    row = conn.execute(
        "select md5(coalesce(string_agg(t::text || ':' || t.xmin::text, '|' order by t.id), ''))"
        " from public.cache_entries t"
    ).fetchone()
    assert row is not None
    return str(row[0])
