"""The membership history's cost, measured at the largest scale of a benchmark run: a series of
1 %-changed incremental runs (what each run's history models took against the rest of its
database time), then the latency of the as-of questions at a moment inside the series.

A run's database time is the time of every SQL statement it ran, as dbt logged each one
(bench_builds: statement_seconds), and the history models' part is the statements of their
layer, ``marts/history``: the history write "adds" history / (database time - history) to a run
that would otherwise be the same. The models' execution time (run_results.json), which also
holds dbt's own Python work per model, is reported beside it.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from validation.bench_builds import DbtRunner, change_one_percent, combine
from validation.bench_method import DBT_SCHEMA, ENVIRONMENT, Progress, Repetitions
from validation.bench_queries import ETF, SYMBOL, BenchQuery, measure_query
from validation.history_query import groups_as_of_query, members_as_of_query

HISTORY_LAYER = "history"  # the folder of models/marts/history, as bench_builds names layers
SETTLED_RUNS = 5  # the target is judged on the median of the series' last runs
HISTORY_QUESTIONS = {
    "etf_holdings_as_of": f"an ETF's holdings as of a past moment ({ETF})",
    "symbol_groups_as_of": f"a symbol's groups as of a past moment ({SYMBOL})",
}


def _database_now(conn: psycopg.Connection[Any]) -> Any:
    row = conn.execute("select (now() at time zone 'utc')::timestamp").fetchone()
    assert row is not None
    return row[0]


def history_series(
    conn: psycopg.Connection[Any], dbt: DbtRunner, runs: int, say: Progress
) -> dict[str, Any]:
    """``runs`` incremental runs, each after 1 % of the entries changed; per run, the database
    time and the history models' part of it. The moment after the middle run is kept for the
    as-of questions (a past state that later runs changed)."""
    series: list[dict[str, Any]] = []
    as_of = None
    for number in range(1, runs + 1):
        changed = change_one_percent(conn)
        run = combine("dbt run", [dbt.run("run")])
        statements, nodes = run["statement_seconds"], run["node_seconds"]
        history = statements.get(HISTORY_LAYER, 0.0)
        database = sum(statements.values())
        series.append(
            {
                "run": number,
                "changed_entries": changed,
                "wall_seconds": run["wall_seconds"],
                "database_seconds": round(database, 3),
                "history_seconds": round(history, 3),
                "added_percent": round(100 * history / max(database - history, 1e-9), 1),
                "node_seconds": round(sum(nodes.values()), 3),
                "history_node_seconds": round(nodes.get(HISTORY_LAYER, 0.0), 3),
            }
        )
        say(
            f"  history run {number}/{runs}: {run['wall_seconds']:.1f} s wall, database "
            f"{database:.2f} s of which history {history:.2f} s"
        )
        if number == (runs + 1) // 2:
            as_of = _database_now(conn)
    counts = conn.execute(
        sql.SQL(
            "select (select count(*) from {memberships}),"
            " (select count(*) from {memberships} where valid_to is not null),"
            " (select count(*) from {groups})"
        ).format(
            memberships=sql.Identifier(DBT_SCHEMA, "group_membership_history"),
            groups=sql.Identifier(DBT_SCHEMA, "definition_group_history"),
        )
    ).fetchone()
    assert counts is not None
    return {
        "runs": series,
        "as_of": as_of,
        "rows": {
            "membership_periods": int(counts[0]),
            "closed_membership_periods": int(counts[1]),
            "group_periods": int(counts[2]),
        },
    }


def history_queries(as_of: Any) -> list[BenchQuery]:
    """The two as-of questions, with the statements `query … --as-of` runs."""
    return [
        BenchQuery(
            "etf_holdings_as_of",
            "history_model",
            members_as_of_query(DBT_SCHEMA),
            {"env": ENVIRONMENT, "type": "ETF", "name": ETF, "at": as_of},
        ),
        BenchQuery(
            "symbol_groups_as_of",
            "history_model",
            groups_as_of_query(DBT_SCHEMA),
            {"env": ENVIRONMENT, "symbol": SYMBOL, "at": as_of},
        ),
    ]


def measure_history_queries(
    conn: psycopg.Connection[Any], series: dict[str, Any], repetitions: Repetitions
) -> None:
    """Time the as-of questions at the series' middle moment (after the database's vacuum);
    the figures go into the series, the moment becomes text."""
    as_of = series["as_of"]
    series["latency"] = [measure_query(conn, q, repetitions) for q in history_queries(as_of)]
    series["as_of"] = as_of.isoformat(sep=" ", timespec="seconds")


def settled_share(series: Mapping[str, Any]) -> float:
    """The history's added share of database time: the median over the series' last runs."""
    runs: Sequence[Mapping[str, Any]] = series["runs"]
    return float(statistics.median(run["added_percent"] for run in runs[-SETTLED_RUNS:]))


def render_history(entry: Mapping[str, Any]) -> list[str]:
    """The report's section: every run of the series, the history's size, the as-of latency."""
    series = entry.get("history")
    if not series:
        return []
    runs = series["runs"]
    out = [
        f"## Membership history (scale {entry['scale']})",
        "",
        f"{len(runs)} incremental `dbt run`s, each after 1 % of the entries changed (as above), "
        "history models included. Database time is the time of every SQL statement of the "
        "run as dbt logged it; *adds* is the history models' statements over the rest of it. "
        "Model time (run_results.json: dbt's own Python work per model included, about 0.3 s "
        "per incremental model whatever it does) is beside it. "
        f"After the series the history held {series['rows']['membership_periods']:,} "
        f"membership periods ({series['rows']['closed_membership_periods']:,} closed) and "
        f"{series['rows']['group_periods']:,} group periods.",
        "",
        "| run | entries changed | wall (s) | database (s) | history's statements (s) | adds "
        "| model time (s) | history models' time (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        out.append(
            f"| {run['run']} | {run['changed_entries']:,} | {run['wall_seconds']:.1f} | "
            f"{run['database_seconds']:.2f} | {run['history_seconds']:.2f} | "
            f"{run['added_percent']:.1f} % | {run['node_seconds']:.2f} | "
            f"{run['history_node_seconds']:.2f} |"
        )
    out += [
        "",
        f"As of {series['as_of']} UTC (after run {(len(runs) + 1) // 2}; later runs changed "
        "the state since), milliseconds, client-side, measured like the queries below:",
        "",
        "| question | p50 | p95 | p99 | runs | answer | statement |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for timing in series.get("latency", []):
        out.append(
            f"| {HISTORY_QUESTIONS[timing['question']]} | {timing['p50_ms']:.3g} | "
            f"{timing['p95_ms']:.3g} | {timing['p99_ms']:.3g} | {timing['runs']} | "
            f"{timing['answer_size']:,} | `{timing['sql']}` |"
        )
    return [*out, ""]
