"""How the benchmark measures: where it builds (the dbt target, the environment, the schemas of
the benchmark database), what it changes between runs, how often it repeats each measurement,
and the method as the report states it.  Every part of the benchmark reads these from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TARGET = "default"  # the dbt target the benchmark builds ...
ENVIRONMENT = "DEFAULT"  # ... and the environment it migrates
SOURCE_SCHEMA = "legacy"  # where the sample cache_entries goes (the project's source_schema var)
DBT_SCHEMA = "public"  # where dbt puts the two tables and the analyst models
NAIVE_SCHEMA = "naive"  # the prototype layout: PK, unique (group_id, symbol), index on symbol
FLOOR_SCHEMA = "floor"  # the hand-written SQL transform's output
CHANGE_EVERY = 100  # the 1 %-changed run changes every 100th mapped entry
CHANGED_AT = "2025-12-06T10:00:00+00:00"
MAPPED_TYPES = (
    "etf_holdings",
    "theme_definition",
    "sector_industry_map",
    "stock_universe",
    "etf_universe",
    "stock_metadata",
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Repetitions:
    """How many times each query runs (a warm-up, then enough runs to fill a time budget),
        how many times the SQL floor and each incremental dbt run are repeated (medians), and how
        many 1 %-changed runs the history series makes at the largest scale, and how many changes
    sync's latency is timed over."""

    warmup: int
    min_runs: int
    max_runs: int
    seconds_per_query: float
    floor_runs: int
    incremental_runs: int
    history_runs: int
    sync_changes: int  # changes timed for sync's commit-to-visible latency (issue 30: >= 20)


FULL_REPETITIONS = Repetitions(
    warmup=10,
    min_runs=30,
    max_runs=500,
    seconds_per_query=2.5,
    floor_runs=3,
    incremental_runs=5,
    history_runs=20,
    sync_changes=20,
)
QUICK_REPETITIONS = Repetitions(
    warmup=1,
    min_runs=3,
    max_runs=10,
    seconds_per_query=0.05,
    floor_runs=1,
    incremental_runs=1,
    history_runs=1,
    sync_changes=3,
)


def method(repetitions: Repetitions, quick: bool) -> dict[str, Any]:
    """The report's method section: what each figure measures, and how often."""
    return {
        "quick": quick,
        "environment": ENVIRONMENT,
        "dbt_target": TARGET,
        "query_warmup_runs": repetitions.warmup,
        "query_runs": f"{repetitions.min_runs} to {repetitions.max_runs}, "
        f"about {repetitions.seconds_per_query:g} s per query",
        "sql_floor_runs": repetitions.floor_runs,
        "latency": "client-side wall time of execute + fetchall with psycopg 3 on one "
        "autocommit connection, warm (after the warm-up runs), parameters bound by psycopg "
        "(which prepares a statement after 5 executions), after a VACUUM (ANALYZE) of the "
        "whole database so that autovacuum does not compete with the timed queries",
        "builds": "wall time of each dbt child process (start-up and partial parsing "
        "included; an untimed dbt parse first fills the parse cache); "
        "dbt_elapsed_seconds is dbt's own elapsed time and node_seconds the models' and "
        "tests' execution time per layer (run_results.json)",
        "history_runs": repetitions.history_runs,
        "sync_changes": repetitions.sync_changes,
        "changed_entries": f"every {CHANGE_EVERY}th {ENVIRONMENT} entry of the mapped types "
        "and stock_metadata (ordered by type, key, name) gets a content change and a new "
        "updated_at",
    }
