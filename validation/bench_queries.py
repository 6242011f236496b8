"""Measuring the queries: the analysts' four questions in every layout (the spec's SQL on the
tables as the models leave them and on a naive copy of them, the analyst models, the legacy
JSONB on cache_entries), the naive copy itself, and the warm, client-side timing of one query.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from validation.bench_method import DBT_SCHEMA, NAIVE_SCHEMA, SOURCE_SCHEMA, Repetitions
from validation.sample_reference import ETFS
from validation.targets import ENVIRONMENTS_SQL
from validation.timings import PACKED_HOLDINGS_SQL, percentile
from validation.validate_compat import COMPAT_NAME, COMPAT_SCHEMA_SUFFIX

ETF, OTHER_ETF, SYMBOL = "SPY", "VOO", "AAPL"  # present at every scale (the first block)
ETF_ENTRY_NAME = next(etf.name for etf in ETFS if etf.ticker == ETF)
# The legacy application's own read of one entry, on the legacy table and on the compatibility
# relation that serves its shape (docs/cutover.md): the same statement on both.
LEGACY_ENTRY_SQL = (
    "select value from {relation} where type = 'etf_holdings' and name = %s and environment = %s"
)

QUESTIONS: dict[str, str] = {
    "etf_holdings": f"an ETF's holdings ({ETF})",
    "symbol_etfs": f"a symbol's ETFs ({SYMBOL})",
    "sector_counts": "symbols per sector",
    "etf_overlap": f"overlap of two ETFs ({ETF}, {OTHER_ETF})",
    "legacy_entry": f"one entry's value by type, name and environment ({ETF}'s holdings entry)",
}
LAYOUTS: dict[str, str] = {
    "spec_sql": "relational: the spec's SQL on the tables as the models leave them",
    "naive": "relational, naive layout (PK, unique (group_id, symbol), index on symbol)",
    "analyst_model": (
        "the analyst models (group_holdings' packed row, symbol_memberships, group_summary,"
        " etf_overlap)"
    ),
    "jsonb": "legacy JSONB on cache_entries",
    "jsonb_stock_metadata": "legacy JSONB via stock_metadata.member_of_etfs",
    "compat": "the compatibility relation (<schema>_compat_<env>.cache_entries)",
}


@dataclass(frozen=True)
class BenchQuery:
    """One way of answering one question: its statement (psycopg placeholders) and params
    (positional, or named for the history's questions)."""

    question: str
    layout: str
    statement: sql.Composed
    params: tuple[Any, ...] | Mapping[str, Any]


def benchmark_queries(environment: str) -> list[BenchQuery]:
    """Every question in every layout; the spec's three statements word for word."""
    dbt, naive = sql.Identifier(DBT_SCHEMA), sql.Identifier(NAIVE_SCHEMA)
    cache = sql.Identifier(SOURCE_SCHEMA, "cache_entries")
    env = environment

    def spec(schema: sql.Identifier, text: str) -> sql.Composed:
        return sql.SQL(text).format(
            groups=sql.SQL("{}.definition_groups").format(schema),
            memberships=sql.SQL("{}.group_memberships").format(schema),
        )

    etf_holdings = (
        "select gm.symbol from {memberships} gm join {groups} dg on dg.id = gm.group_id"
        " where dg.name = %s and dg.type = 'ETF' and dg.environment = %s"
    )
    symbol_etfs = (
        "select dg.name from {groups} dg join {memberships} gm on gm.group_id = dg.id"
        " where gm.symbol = %s and dg.type = 'ETF' and dg.environment = %s"
    )
    sector_counts = (
        "select dg.name, count(distinct gm.symbol) from {groups} dg"
        " join {memberships} gm on gm.group_id = dg.id"
        " where dg.type = 'SECTOR' and dg.environment = %s group by dg.name"
    )
    etf_overlap = (
        "select count(*) from {memberships} a join {memberships} b on b.symbol = a.symbol"
        " where a.group_id = (select id from {groups}"
        " where name = %s and type = 'ETF' and environment = %s)"
        " and b.group_id = (select id from {groups}"
        " where name = %s and type = 'ETF' and environment = %s)"
    )
    queries: list[BenchQuery] = []
    for layout, schema in (("spec_sql", dbt), ("naive", naive)):
        queries += [
            BenchQuery("etf_holdings", layout, spec(schema, etf_holdings), (ETF, env)),
            BenchQuery("symbol_etfs", layout, spec(schema, symbol_etfs), (SYMBOL, env)),
            BenchQuery("sector_counts", layout, spec(schema, sector_counts), (env,)),
            BenchQuery(
                "etf_overlap", layout, spec(schema, etf_overlap), (ETF, env, OTHER_ETF, env)
            ),
        ]

    def on(relation: sql.Composable, text: str) -> sql.Composed:
        return sql.SQL(text).format(relation=relation)

    queries += [
        BenchQuery(
            "etf_holdings",
            "analyst_model",
            # the ETF's one packed row: its symbols in source order and their weights (NULL
            # for an unweighted list), the answer the JSONB row gives (validation/timings.py)
            sql.SQL(PACKED_HOLDINGS_SQL).format(holdings=sql.SQL("{}.group_holdings").format(dbt)),
            (env, "ETF", ETF),
        ),
        BenchQuery(
            "symbol_etfs",
            "analyst_model",
            on(
                sql.SQL("{}.symbol_memberships").format(dbt),
                "select etfs from {relation} where environment = %s and symbol = %s",
            ),
            (env, SYMBOL),
        ),
        BenchQuery(
            "sector_counts",
            "analyst_model",
            on(
                sql.SQL("{}.group_summary").format(dbt),
                "select name, member_count from {relation}"
                " where environment = %s and type = 'SECTOR'",
            ),
            (env,),
        ),
        BenchQuery(
            "etf_overlap",
            "analyst_model",
            on(
                sql.SQL("{}.etf_overlap").format(dbt),
                "select shared_symbols from {relation}"
                " where environment = %s and etf = %s and other_etf = %s",
            ),
            (env, ETF, OTHER_ETF),
        ),
        BenchQuery(
            "etf_holdings",
            "jsonb",
            on(
                cache,
                "select value -> 'holdings' from {relation}"
                " where type = 'etf_holdings' and key = %s and environment = %s",
            ),
            (ETF, env),
        ),
        BenchQuery(
            "symbol_etfs",
            "jsonb",
            on(
                cache,
                "select key from {relation}"
                " where type = 'etf_holdings' and environment = %s and value -> 'holdings' ? %s",
            ),
            (env, SYMBOL),
        ),
        BenchQuery(
            "symbol_etfs",
            "jsonb_stock_metadata",
            on(
                cache,
                "select value -> 'member_of_etfs' from {relation}"
                " where type = 'stock_metadata' and key = %s and environment = %s",
            ),
            (SYMBOL, env),
        ),
        BenchQuery(
            "sector_counts",
            "jsonb",
            on(
                cache,
                "select value ->> 'sector', count(distinct key) from {relation}"
                " where type = 'stock_metadata' and environment = %s group by 1",
            ),
            (env,),
        ),
        BenchQuery(
            "etf_overlap",
            "jsonb",
            on(
                cache,
                "select count(*) from ("
                " select jsonb_array_elements_text(value -> 'holdings') from {relation}"
                " where type = 'etf_holdings' and key = %s and environment = %s"
                " intersect"
                " select jsonb_array_elements_text(value -> 'holdings') from {relation}"
                " where type = 'etf_holdings' and key = %s and environment = %s) as shared",
            ),
            (ETF, env, OTHER_ETF, env),
        ),
        BenchQuery("legacy_entry", "jsonb", on(cache, LEGACY_ENTRY_SQL), (ETF_ENTRY_NAME, env)),
        BenchQuery(
            "legacy_entry",
            "compat",
            on(
                sql.Identifier(f"{DBT_SCHEMA}_{COMPAT_SCHEMA_SUFFIX}_{env.lower()}", COMPAT_NAME),
                LEGACY_ENTRY_SQL,
            ),
            (ETF_ENTRY_NAME, env),
        ),
    ]
    return queries


# The floor under every latency: one trivial statement on the same connection and client.
ROUND_TRIP = BenchQuery("round_trip", "floor", sql.Composed([sql.SQL("select %s::integer")]), (1,))


def _answer_size(rows: Sequence[tuple[Any, ...]]) -> int:
    """How big the answer is, comparable across layouts: list items, a count, or rows."""
    if len(rows) == 1 and rows[0] and isinstance(rows[0][0], list):
        return len(rows[0][0])  # a list, alone or with its parallel arrays (a packed row)
    if len(rows) == 1 and len(rows[0]) == 1:
        value = rows[0][0]
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return len(rows)


def measure_query(
    conn: psycopg.Connection[Any], query: BenchQuery, repetitions: Repetitions
) -> dict[str, Any]:
    """Warm up, then run the query enough times for the budget; each run fetches every row."""
    with conn.cursor() as cur:
        warm_started = time.perf_counter()
        warmups = 0
        while warmups < max(1, repetitions.warmup):
            cur.execute(query.statement, query.params)
            cur.fetchall()
            warmups += 1
            if time.perf_counter() - warm_started > repetitions.seconds_per_query / 2:
                break
        estimate = (time.perf_counter() - warm_started) / warmups
        runs = int(repetitions.seconds_per_query / max(estimate, 1e-6))
        runs = max(repetitions.min_runs, min(repetitions.max_runs, runs))
        samples = []
        rows: list[tuple[Any, ...]] = []
        for _ in range(runs):
            started = time.perf_counter()
            cur.execute(query.statement, query.params)
            rows = cur.fetchall()
            samples.append((time.perf_counter() - started) * 1000)
    return {
        "question": query.question,
        "layout": query.layout,
        "sql": query.statement.as_string(conn),
        "params": [
            str(value)
            for value in (
                query.params.values() if isinstance(query.params, Mapping) else query.params
            )
        ],
        "runs": runs,
        "rows": len(rows),
        "answer_size": _answer_size(rows),
        "p50_ms": round(statistics.median(samples), 4),
        "p95_ms": round(percentile(samples, 0.95), 4),
        "p99_ms": round(percentile(samples, 0.99), 4),
        "max_ms": round(max(samples), 4),
    }


# --- the naive layout ---------------------------------------------------------------------

# The specification's two tables with only their keys: no unique (name, type, environment) on
# definition_groups, none of the project's indexes.
_GROUPS_DDL = """
create table {schema}.definition_groups (
    id serial primary key,
    name varchar(100) not null,
    type varchar(50) not null check (type in ('ETF', 'THEME', 'SECTOR', 'SEGMENT', 'CUSTOM')),
    description text,
    metadata jsonb,
    liquidity_filter jsonb,
    environment varchar(10) not null check (environment in {environments}),
    created_at timestamp without time zone default current_timestamp,
    updated_at timestamp without time zone default current_timestamp,
    last_update timestamp without time zone default current_timestamp
)
"""
_MEMBERSHIPS_DDL = """
create table {schema}.group_memberships (
    id serial primary key,
    group_id integer not null references {schema}.definition_groups (id) on delete cascade,
    symbol varchar(50) not null,
    weight numeric(5, 4),
    metadata jsonb,
    added_at timestamp without time zone default current_timestamp,
    updated_at timestamp without time zone default current_timestamp,
    constraint unique_membership unique (group_id, symbol)
)
"""
_GROUP_COLUMNS = (
    "id, name, type, description, metadata, liquidity_filter, environment, created_at, "
    "updated_at, last_update"
)
_MEMBERSHIP_COLUMNS = "id, group_id, symbol, weight, metadata, added_at, updated_at"


def build_naive_layout(conn: psycopg.Connection[Any]) -> None:
    """The issue's prototype: the same rows with only a PK, a unique (group_id, symbol) and an
    index on symbol (and the FK), analyzed."""
    naive, source = sql.Identifier(NAIVE_SCHEMA), sql.Identifier(DBT_SCHEMA)
    with conn.transaction():
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(naive))
        conn.execute(sql.SQL("create schema {}").format(naive))
        conn.execute(
            sql.SQL(_GROUPS_DDL).format(schema=naive, environments=sql.SQL(ENVIRONMENTS_SQL))
        )
        conn.execute(sql.SQL(_MEMBERSHIPS_DDL).format(schema=naive))
        for table, columns in (
            ("definition_groups", _GROUP_COLUMNS),
            ("group_memberships", _MEMBERSHIP_COLUMNS),
        ):
            conn.execute(
                sql.SQL("insert into {}.{} ({}) select {} from {}.{}").format(
                    naive,
                    sql.Identifier(table),
                    sql.SQL(columns),
                    sql.SQL(columns),
                    source,
                    sql.Identifier(table),
                )
            )
        conn.execute(sql.SQL("create index on {}.group_memberships (symbol)").format(naive))
        conn.execute(sql.SQL("analyze {}.definition_groups").format(naive))
        conn.execute(sql.SQL("analyze {}.group_memberships").format(naive))
