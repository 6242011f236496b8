"""The SQL floor of the benchmark: the migration written once by hand, as one SQL script
(``validation/bench_floor.sql``), run in one transaction and timed, and how far its rows are from
the models' rows.  What a build costs is judged against it.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from validation.bench_method import (
    DBT_SCHEMA,
    ENVIRONMENT,
    FLOOR_SCHEMA,
    MAPPED_TYPES,
    SOURCE_SCHEMA,
)
from validation.targets import ENVIRONMENTS_SQL, environment_of

FLOOR_SQL = Path(__file__).resolve().parent / "bench_floor.sql"
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)


def floor_statements() -> list[sql.Composed]:
    """The SQL floor's statements, in order (run them in one transaction): bench_floor.sql
    without its whole-line comments, cut at every ";" that ends a line, with {floor} and
    {cache} filled in as identifiers, {environments} as the list of environments and
    {environment_of_e} as the environment of cache row e."""
    script = "\n".join(
        line
        for line in FLOOR_SQL.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("--")
    )
    names = {
        "floor": sql.Identifier(FLOOR_SCHEMA),
        "cache": sql.Identifier(SOURCE_SCHEMA, "cache_entries"),
        "environments": sql.SQL(ENVIRONMENTS_SQL),
        # a row's environment by the models' rule (macros/sql_helpers/normalisation.sql)
        "environment_of_e": environment_of(sql.Identifier("e", "environment")),
    }
    return [
        sql.SQL(text.strip()).format(**names)
        for text in _STATEMENT_END.split(script)
        if text.strip()
    ]


def time_floor(conn: psycopg.Connection[Any], runs: int) -> dict[str, Any]:
    """Run the floor ``runs`` times (at least once): the median wall time, every run, and how
    far its rows are from the models'."""
    params = {
        "environment": ENVIRONMENT,
        "types": list(MAPPED_TYPES),
        "groups": f"{FLOOR_SCHEMA}.definition_groups",
    }
    statements = floor_statements()
    samples = []
    for _ in range(max(1, runs)):
        started = time.perf_counter()
        with conn.transaction():
            for statement in statements:
                conn.execute(statement, params if "%(" in statement.as_string(conn) else None)
        samples.append(time.perf_counter() - started)
    return {
        "what": "one hand-written SQL script, one transaction (cache_entries → the two tables)",
        "wall_seconds": round(statistics.median(samples), 3),
        "runs_seconds": [round(s, 3) for s in samples],
        "peak_rss_mib": None,
        "memory_of": "runs inside the server, whose memory is not measured",
        "parity": _floor_parity(conn),
    }


def _floor_parity(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """How far the floor's rows are from the models' (groups, memberships by type/name/symbol)."""
    statement = sql.SQL(
        """
        with models as (
            select g.type, g.name, m.symbol from {dbt}.group_memberships m
            join {dbt}.definition_groups g on g.id = m.group_id where g.environment = %s
        ), floor as (
            select g.type, g.name, m.symbol from {floor}.group_memberships m
            join {floor}.definition_groups g on g.id = m.group_id
        )
        select
            (select count(*) from {dbt}.definition_groups where environment = %s),
            (select count(*) from {floor}.definition_groups),
            (select count(*) from models),
            (select count(*) from floor),
            (select count(*) from (select * from models except select * from floor) d),
            (select count(*) from (select * from floor except select * from models) d)
        """
    ).format(dbt=sql.Identifier(DBT_SCHEMA), floor=sql.Identifier(FLOOR_SCHEMA))
    row = conn.execute(statement, (ENVIRONMENT, ENVIRONMENT)).fetchone()
    assert row is not None
    keys = (
        "model_groups",
        "floor_groups",
        "model_memberships",
        "floor_memberships",
        "memberships_only_in_models",
        "memberships_only_in_floor",
    )
    return dict(zip(keys, (int(v) for v in row), strict=True))
