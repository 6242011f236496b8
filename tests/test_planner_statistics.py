"""Every model is planned over tables that have statistics, and the analyst models' plans cost
what they cost with fresh statistics (docs/architecture.md, models/marts/core/).

Without statistics the planner guesses a table's size and spread: at scale 100 the first
build's etf_overlap crossed every pair of ETFs before joining group_memberships (estimated cost
9e11 against 5e6 with statistics) and ran for minutes where it takes seconds.  The check
happens as dbt starts each model (its NodeStart event, in the thread that builds it), from a
connection of its own: what the planner would see at that moment.  It compares plan costs, not
times, so a busy machine cannot fail it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from support.dbt_project import DbtProject

from validation import sample

SCALE = 10
TABLE_LIKE = frozenset({"table", "incremental"})
# Fresh statistics sample the table, so two plans of the same query differ a little; a plan
# without them was 734x the reference at scale 10 (etf_overlap as it started, PostgreSQL 15).
MAX_COST_RATIO = 10.0


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class PlannerWatch:
    """Listens to dbt's events; at each model's start records which of the tables it reads
    had no statistics, and the plan cost of the analyst models' compiled SQL."""

    settings: dict[str, str]
    parents: dict[str, list[Relation]]
    analyst_sql: dict[str, str]
    missing_statistics: dict[str, list[str]] = field(default_factory=dict)
    costs_at_start: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def __call__(self, event: Any) -> None:
        if event.info.name != "NodeStart":
            return
        unique_id = event.data.node_info.unique_id
        if unique_id not in self.parents:
            return
        try:
            with psycopg.connect(**_conninfo(self.settings), autocommit=True) as conn:
                missing = [str(r) for r in self.parents[unique_id] if not _has_statistics(conn, r)]
                if missing:
                    self.missing_statistics[unique_id] = missing
                if unique_id in self.analyst_sql:
                    self.costs_at_start[unique_id] = plan_cost(conn, self.analyst_sql[unique_id])
        except Exception as error:  # reported by the test (an exception here would stop dbt)
            self.errors.append(f"{unique_id}: {error}")


def _conninfo(settings: dict[str, str]) -> dict[str, str]:
    return {
        "host": settings["PGHOST"],
        "port": settings["PGPORT"],
        "user": settings["PGUSER"],
        "dbname": settings["PGDATABASE"],
    }


def _has_statistics(conn: psycopg.Connection, relation: Relation) -> bool:
    """ANALYZE (or VACUUM) has run: reltuples is -1 on a table neither ever read, and an
    analyzed table with rows has column statistics.  An empty table needs none (the planner
    reads its size, 0 pages, from the file)."""
    row = conn.execute(
        "select pg_relation_size(c.oid) = 0 or (c.reltuples >= 0 and (c.reltuples = 0 or exists ("
        "  select from pg_stats s where s.schemaname = n.nspname and s.tablename = c.relname)))"
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s",
        (relation.schema, relation.name),
    ).fetchone()
    return bool(row and row[0])


def plan_cost(conn: psycopg.Connection, query: str) -> float:
    (plan,) = conn.execute(f"explain (format json) {query}").fetchone()
    return float(plan[0]["Plan"]["Total Cost"])


# The ledger (macros/run_state/ledger.sql) is read through macros as well as refs: every model
# from the table it records onwards reads it, whatever its manifest says.
LEDGER_READERS = {
    "migration_ledger_groups": "model.sprint59_migration.definition_groups",
    "migration_ledger_memberships": "model.sprint59_migration.group_memberships",
}


def _table_like_parents(manifest: Any) -> dict[str, list[Relation]]:
    """Each table-like model and the tables it reads: its table-like parent models (views
    have no statistics), and the ledger's tables from the model whose rows they record on."""
    models = {
        unique_id: node
        for unique_id, node in manifest.nodes.items()
        if node.resource_type == "model" and node.config.materialized in TABLE_LIKE
    }
    parents = {
        unique_id: [
            Relation(models[parent].schema, models[parent].alias)
            for parent in node.depends_on.nodes
            if parent in models
        ]
        for unique_id, node in models.items()
    }
    for table, recorded_by in LEDGER_READERS.items():
        ledger = Relation(models[recorded_by].schema, table)
        for unique_id in _descendants(manifest, recorded_by) & parents.keys():
            parents[unique_id].append(ledger)
    return parents


def _descendants(manifest: Any, unique_id: str) -> set[str]:
    """The node and every node downstream of it."""
    found, todo = {unique_id}, [unique_id]
    while todo:
        for child in manifest.child_map.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.fixture
def sample_at_scale_10(dbt_project: DbtProject) -> DbtProject:
    """The sample cache at scale 10 (DEFAULT), nothing built yet."""
    with dbt_project.connect() as conn:
        sample.load_sample(conn, environments=("DEFAULT",), scale=SCALE)
    return dbt_project


def test_every_model_is_planned_over_tables_with_statistics(sample_at_scale_10: DbtProject):
    project = sample_at_scale_10
    # the first build's SQL of the analyst models (nothing exists yet: not incremental)
    compiled = project.invoke("compile", args=("-s", "marts.analytics", "--no-write-json"))
    analyst_sql = {
        r.node.unique_id: r.node.compiled_code
        for r in compiled.result.results
        if r.node.resource_type == "model"
    }
    assert len(analyst_sql) == 4, analyst_sql.keys()  # group_holdings is the fourth
    watch = PlannerWatch(
        dict(project.settings), _table_like_parents(project.manifest("default")), analyst_sql
    )

    project.build("default", callbacks=[watch])

    assert watch.errors == []
    assert watch.missing_statistics == {}, "models started over tables without statistics"
    assert watch.costs_at_start.keys() == analyst_sql.keys()
    with project.connect() as conn:
        for relation in {r for parents in watch.parents.values() for r in parents}:
            conn.execute(f"analyze {relation}")
        reference = {unique_id: plan_cost(conn, query) for unique_id, query in analyst_sql.items()}
    ratios = {
        unique_id: round(watch.costs_at_start[unique_id] / reference[unique_id], 2)
        for unique_id in analyst_sql
    }
    assert all(ratio <= MAX_COST_RATIO for ratio in ratios.values()), (
        f"plan cost at the model's start / with fresh statistics: {ratios}"
    )
