"""The Great Expectations suite of the migration: counts, integrity, legacy parity, query timings.

``run_validation`` reads the relation names from dbt's manifest, times the spec's analyst queries
and the suite's own queries with psycopg, then runs one checkpoint in an ephemeral GX context over
four suites (counts, definition_groups, group_memberships, query_timings) and writes Data Docs.
What each environment must hold comes from ``validation/expectations/<target>.yml``.

``import great_expectations`` is slow (2-4 s), so it happens inside ``run_validation`` only, and its
cost is reported apart from the checkpoint's run time.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import yaml
from psycopg import sql

from validation import targets
from validation.connection import connect, describe
from validation.errors import UserFacingError
from validation.targets import environment_for
from validation.timings import (
    QueryTiming,
    Relation,
    TimedQuery,
    analyst_queries,
    load_average,
    measure,
    measure_within,
)

if TYPE_CHECKING:
    import pandas as pd

EXPECTATIONS_DIR = Path(__file__).resolve().parent / "expectations"
GROUP_TYPES = ("ETF", "THEME", "SECTOR", "SEGMENT", "CUSTOM")
ENVIRONMENTS = targets.ENVIRONMENTS
ANALYST_QUERIES = ("etf_holdings", "symbol_etfs", "sector_filter")
VALIDATION_TOTAL = "validation_queries"
TIMING_KEYS = (
    "etf_name",
    "symbol",
    "analyst",
    "validation",
    "budgets_p95_ms",
    "goals_p95_ms",
    "checkpoint_seconds",
)
MANIFEST_NODES = targets.NODES
CACHE_SOURCE = targets.CACHE_SOURCE
TIMINGS_CSV = "query_timings.csv"
HISTORY_DIR = "history"  # the GX file context whose results the Data Docs index lists
DOCS_SITE = "local"
# What the query timings do to the result: gate (a missed budget fails, exit 3 when nothing
# else failed), report (measured and shown, never failing), off (not measured).
TIMING_MODES = ("gate", "report", "off")
EXIT_PASS, EXIT_DATA_FAILURE, EXIT_TIMING_FAILURE = 0, 1, 3
SHOWN_ROWS = 5

# --- the expectations file --------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """An accepted range for a figure, and how to say it."""

    minimum: float
    maximum: float
    text: str


@dataclass(frozen=True)
class ExpectationsFile:
    """One environment's versioned expectations (validation/expectations/<target>.yml)."""

    path: Path
    environment: str
    counts: Mapping[str, Band]
    etf_name: str
    symbol: str
    analyst_warmup: int
    analyst_runs: int
    analyst_windows: int
    validation_warmup: int
    validation_runs: int
    budgets_ms: Mapping[str, float]
    goals_ms: Mapping[str, float]
    checkpoint_seconds: float


COUNT_LABELS: Mapping[str, str] = {
    "etf_groups": "ETF groups",
    "theme_groups": "THEME groups",
    "sector_groups": "SECTOR groups",
    "distinct_symbols": "distinct symbols (all groups)",
    "etf_theme_memberships": "ETF + THEME memberships",
}
QUERY_LABELS: Mapping[str, str] = {
    "etf_holdings": "ETF holdings by name",
    "symbol_etfs": "a symbol's ETFs",
    "sector_filter": "sector filter",
    VALIDATION_TOTAL: "all validation queries",
}


def default_expectations_path(target: str) -> Path:
    return EXPECTATIONS_DIR / f"{target}.yml"


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserFacingError(
            f"{where} must be a number, not {value!r}; fix the expectations file."
        )
    return float(value)


def _count_band(value: Any, where: str) -> Band:
    """An exact count (24), {about: N, tolerance: 0.03} or {min: A, max: B}."""
    if isinstance(value, int) and not isinstance(value, bool):
        return Band(value, value, f"exactly {value:,}")
    if isinstance(value, Mapping) and set(value) == {"about", "tolerance"}:
        about = _number(value["about"], f"{where}.about")
        tolerance = _number(value["tolerance"], f"{where}.tolerance")
        if not 0 <= tolerance < 1:
            raise UserFacingError(
                f"{where}.tolerance must be a fraction in [0, 1); fix the expectations file."
            )
        low, high = round(about * (1 - tolerance)), round(about * (1 + tolerance))
        return Band(low, high, f"{low:,} to {high:,} ({about:,.0f} ± {tolerance:.0%})")
    if isinstance(value, Mapping) and set(value) == {"min", "max"}:
        low, high = _number(value["min"], f"{where}.min"), _number(value["max"], f"{where}.max")
        if low > high:
            raise UserFacingError(f"{where}: min is above max; fix the expectations file.")
        return Band(low, high, f"{low:,.0f} to {high:,.0f}")
    raise UserFacingError(
        f"{where} must be a count, {{about: N, tolerance: F}} or {{min: A, max: B}}; "
        "fix the expectations file."
    )


def _section(data: Mapping[str, Any], key: str, where: str, keys: Iterable[str]) -> dict[str, Any]:
    section = data.get(key)
    wanted = set(keys)
    if not isinstance(section, Mapping) or set(section) != wanted:
        raise UserFacingError(
            f"{where}{key} must give exactly {', '.join(sorted(wanted))}; "
            "fix the expectations file."
        )
    return dict(section)


def _runs(value: Any, where: str, *, windows: bool = False) -> tuple[int, int, int]:
    """(warmup, runs, windows) of a timing section; ``windows`` only where it is allowed."""
    keys = {"warmup", "runs"}
    if (
        not isinstance(value, Mapping)
        or not keys <= set(value) <= (keys | {"windows"} if windows else keys)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value.values())
        or value["warmup"] < 0
        or value["runs"] < 2
        or value.get("windows", 1) < 1
    ):
        shape = "{warmup: N >= 0, runs: N >= 2" + (", windows: N >= 1}" if windows else "}")
        raise UserFacingError(f"{where} must be {shape}; fix the expectations file.")
    return value["warmup"], value["runs"], value.get("windows", 1)


def load_expectations(path: Path, environment: str) -> ExpectationsFile:
    """Read and check an expectations file; it must be written for `environment`."""
    if not path.is_file():
        raise UserFacingError(
            f"No expectations file at {path}; create it (see validation/expectations/*.yml)."
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserFacingError(f"{path} is not valid YAML ({exc}); fix the file.") from exc
    where = f"{path.name}: "
    top = {"version", "environment", "counts", "timings"}
    if not isinstance(data, Mapping) or set(data) != top:
        raise UserFacingError(
            f"{where}the file must have exactly {', '.join(sorted(top))}; "
            "fix the expectations file."
        )
    if data["version"] != 1:
        raise UserFacingError(f"{where}version must be 1; fix the expectations file.")
    if data["environment"] != environment:
        raise UserFacingError(
            f"{path} describes environment {data['environment']!r}, not {environment}; "
            "pass the expectations file of this target."
        )
    counts = _section(data, "counts", where, COUNT_LABELS)
    timings = _section(
        data,
        "timings",
        where,
        TIMING_KEYS,
    )
    raw_budgets = _section(
        timings, "budgets_p95_ms", f"{where}timings.", (*ANALYST_QUERIES, VALIDATION_TOTAL)
    )
    raw_goals = _section(timings, "goals_p95_ms", f"{where}timings.", ANALYST_QUERIES)
    for key in ("etf_name", "symbol"):
        if not isinstance(timings[key], str) or not timings[key]:
            raise UserFacingError(f"{where}timings.{key} must be a non-empty string.")
    analyst_warmup, analyst_runs, analyst_windows = _runs(
        timings["analyst"], f"{where}timings.analyst", windows=True
    )
    validation_warmup, validation_runs, _ = _runs(
        timings["validation"], f"{where}timings.validation"
    )
    return ExpectationsFile(
        path=path,
        environment=environment,
        counts={key: _count_band(counts[key], f"{where}counts.{key}") for key in COUNT_LABELS},
        etf_name=timings["etf_name"],
        symbol=timings["symbol"],
        analyst_warmup=analyst_warmup,
        analyst_runs=analyst_runs,
        analyst_windows=analyst_windows,
        validation_warmup=validation_warmup,
        validation_runs=validation_runs,
        budgets_ms={
            k: _number(v, f"{where}timings.budgets_p95_ms.{k}") for k, v in raw_budgets.items()
        },
        goals_ms={k: _number(v, f"{where}timings.goals_p95_ms.{k}") for k, v in raw_goals.items()},
        checkpoint_seconds=_number(timings["checkpoint_seconds"], f"{where}checkpoint_seconds"),
    )


# --- relations from dbt's manifest ------------------------------------------------------------


@dataclass(frozen=True)
class Relations:
    groups: Relation
    memberships: Relation
    exceptions: Relation
    cache: Relation


def relations_of(tables: targets.Tables, database: str) -> Relations:
    """The four relations the suite reads, where validation/targets.py found them."""

    def relation(found: targets.Relation) -> Relation:
        return Relation(database, found.schema, found.name)

    return Relations(
        relation(tables.groups),
        relation(tables.memberships),
        relation(tables.exceptions),
        relation(tables.cache),
    )


def check_relations_exist(
    conn: psycopg.Connection[Any], relations: Relations, target: str, tables: targets.Tables
) -> None:
    database = relations.groups.database
    for key in ("groups", "memberships", "exceptions", "cache"):
        relation: Relation = getattr(relations, key)
        row = conn.execute(
            "select to_regclass(%s)", (relation.identifier().as_string(conn),)
        ).fetchone()
        if row is None or row[0] is None:
            if key == "cache":
                raise UserFacingError(
                    f"The legacy table {relation} does not exist in {database}; load "
                    "cache_entries (python -m validation load-sample) and run "
                    f"dbt build --target {target}."
                )
            raise UserFacingError(
                f"Table {relation} does not exist in {database}{tables.looked_in()}; "
                f"run dbt build --target {target} first."
            )


# --- the suite's SQL --------------------------------------------------------------------------
# Templates for psycopg.sql: {groups}, {memberships}, {exceptions}, {cache} are the manifest's
# relations, {environment} the environment (a parameter when timed, a literal for GX) and {batch}
# the relation GX validates (Great Expectations substitutes it itself).  No other braces, no "%".
# GX aliases {batch} itself unless the query contains JOIN; then the query must alias it
# ("{batch} as memberships"), which also reads right when psycopg puts the table name there.

COUNTS_SQL = """
select
    (select count(*) from {groups} where environment = {environment} and type = 'ETF')
        as etf_groups,
    (select count(*) from {groups} where environment = {environment} and type = 'THEME')
        as theme_groups,
    (select count(*) from {groups} where environment = {environment} and type = 'SECTOR')
        as sector_groups,
    (
        select count(distinct m.symbol)
        from {memberships} as m
        inner join {groups} as g on m.group_id = g.id
        where g.environment = {environment}
    ) as distinct_symbols,
    (
        select count(*)
        from {memberships} as m
        inner join {groups} as g on m.group_id = g.id
        where g.environment = {environment} and g.type in ('ETF', 'THEME')
    ) as etf_theme_memberships
"""

DUPLICATE_GROUPS_SQL = """
with batch_rows as (select * from {batch})
select name, type, environment, count(*) as copies
from batch_rows
group by name, type, environment
having count(*) > 1
"""

EMPTY_GROUPS_SQL = """
with batch_rows as (select * from {batch})
select g.type, g.name
from batch_rows as g
where
    g.environment = {environment}
    and g.type in ('ETF', 'THEME')
    and not exists (select 1 from {memberships} as m where m.group_id = g.id)
"""

GROUP_VALUE_SETS_SQL = """
select count(*) as unexpected
from {batch}
where
    type is null or type not in ('ETF', 'THEME', 'SECTOR', 'SEGMENT', 'CUSTOM')
    or environment is null or environment not in ('DEFAULT', 'TEST', 'UAT', 'PROD')
"""

ORPHAN_MEMBERSHIPS_SQL = """
with batch_rows as (select * from {batch})
select m.id, m.group_id, m.symbol
from batch_rows as m
where not exists (select 1 from {groups} as g where g.id = m.group_id)
"""

DUPLICATE_MEMBERSHIPS_SQL = """
with batch_rows as (select * from {batch})
select group_id, symbol, count(*) as copies
from batch_rows
group by group_id, symbol
having count(*) > 1
"""

WEIGHT_RANGE_SQL = """
select count(*) as unexpected from {batch} where weight < 0 or weight > 1
"""

# Every ETF and theme of the environment: its members must be the legacy JSON array (trimmed,
# upper-cased) minus the elements, or whole entries, that the migration recorded as error-level
# exceptions.  Returns one row per symbol on one side only.  Which parity check guards what:
# the description of cache_entry_reconciliation (models/marts/operations/_operations.yml).
PARITY_SQL = """
with batch_rows as (select * from {batch} as memberships),
legacy_entries as (
    select
        c.id as cache_entry_id,
        case c.type when 'etf_holdings' then 'ETF' else 'THEME' end as group_type,
        c.key as group_name,
        case c.type
            when 'etf_holdings' then c.value -> 'holdings'
            else c.value -> 'symbols'
        end as member_list
    from {cache} as c
    where
        c.type in ('etf_holdings', 'theme_definition')
        and upper(btrim(c.environment, E' \\t\\r\\n')) = {environment}
        and jsonb_typeof(c.value) = 'object'
        and not exists (
            select 1
            from {exceptions} as x
            where
                x.cache_entry_id = c.id
                and x.severity = 'error'
                and x.element_position is null
        )
),
legacy_members as (
    select distinct
        e.group_type,
        e.group_name,
        upper(btrim(
            case jsonb_typeof(listed.element)
                when 'string' then jsonb_build_array(listed.element) ->> 0
                when 'object'
                    then coalesce(listed.element ->> 'symbol', listed.element ->> 'ticker')
            end
        )) as symbol
    from legacy_entries as e
    cross join lateral jsonb_array_elements(
        case when jsonb_typeof(e.member_list) = 'array' then e.member_list else '[]' end
    ) with ordinality as listed (element, position)
    where not exists (
        select 1
        from {exceptions} as x
        where
            x.cache_entry_id = e.cache_entry_id
            and x.severity = 'error'
            and x.element_position = listed.position
    )
),
migrated_members as (
    select g.type as group_type, g.name as group_name, m.symbol
    from batch_rows as m
    inner join {groups} as g on m.group_id = g.id
    where g.environment = {environment} and g.type in ('ETF', 'THEME')
)
select
    coalesce(l.group_type, n.group_type) as group_type,
    coalesce(l.group_name, n.group_name) as group_name,
    coalesce(l.symbol, n.symbol) as symbol,
    case
        when n.group_name is null then 'in the legacy list, not in group_memberships'
        else 'in group_memberships, not in the legacy list'
    end as mismatch
from legacy_members as l
full join migrated_members as n
    on l.group_type = n.group_type and l.group_name = n.group_name and l.symbol = n.symbol
where l.group_name is null or n.group_name is null
order by 2, 3
"""


@dataclass(frozen=True)
class SuiteQuery:
    """A query of the suite: its template and the relation GX substitutes for {batch}."""

    name: str
    template: str
    batch: str | None  # "groups", "memberships", or None (a query asset of its own)


SUITE_QUERIES: tuple[SuiteQuery, ...] = (
    SuiteQuery("environment_counts", COUNTS_SQL, None),
    SuiteQuery("duplicate_groups", DUPLICATE_GROUPS_SQL, "groups"),
    SuiteQuery("empty_groups", EMPTY_GROUPS_SQL, "groups"),
    SuiteQuery("group_value_sets", GROUP_VALUE_SETS_SQL, "groups"),
    SuiteQuery("orphan_memberships", ORPHAN_MEMBERSHIPS_SQL, "memberships"),
    SuiteQuery("duplicate_memberships", DUPLICATE_MEMBERSHIPS_SQL, "memberships"),
    SuiteQuery("weight_range", WEIGHT_RANGE_SQL, "memberships"),
    SuiteQuery("legacy_parity", PARITY_SQL, "memberships"),
)


def _names(relations: Relations) -> dict[str, sql.Composable]:
    return {
        "groups": relations.groups.identifier(),
        "memberships": relations.memberships.identifier(),
        "exceptions": relations.exceptions.identifier(),
        "cache": relations.cache.identifier(),
    }


def statement_for_psycopg(query: SuiteQuery, relations: Relations) -> sql.Composed:
    """The query as psycopg runs it: relations as identifiers, the environment a parameter."""
    names = _names(relations)
    batch = names[query.batch] if query.batch else sql.SQL("")
    return sql.SQL(query.template).format(
        **names, batch=batch, environment=sql.Placeholder("environment")
    )


def statement_for_gx(
    query: SuiteQuery, relations: Relations, environment: str, conn: psycopg.Connection[Any]
) -> str:
    """The query as GX runs it: {batch} left for GX, the environment a quoted literal."""
    composed = sql.SQL(query.template).format(
        **_names(relations), batch=sql.SQL("{batch}"), environment=sql.Literal(environment)
    )
    return composed.as_string(conn).strip()


# --- timings ----------------------------------------------------------------------------------


def measure_queries(
    conn: psycopg.Connection[Any],
    relations: Relations,
    spec: ExpectationsFile,
    progress: Callable[[str], None],
) -> list[QueryTiming]:
    """Time the three analyst queries and every query of the suite (psycopg, parameters)."""
    timings = []
    for query in analyst_queries(
        relations.groups,
        relations.memberships,
        spec.environment,
        etf_name=spec.etf_name,
        symbol=spec.symbol,
    ):
        progress(f"timing {query.name} ({spec.analyst_runs} runs)")
        timed = measure_within(
            conn,
            query,
            budget_ms=spec.budgets_ms[query.name],
            warmup=spec.analyst_warmup,
            runs=spec.analyst_runs,
            windows=spec.analyst_windows,
        )
        if timed.windows > 1:
            progress(
                f"  {query.name}: p95 over budget in a window; best of {timed.windows} windows: "
                f"{timed.p95_ms:.2f} ms"
            )
        timings.append(timed)
    progress(f"timing the suite's {len(SUITE_QUERIES)} queries ({spec.validation_runs} runs each)")
    for suite_query in SUITE_QUERIES:
        timed = TimedQuery(
            suite_query.name,
            "validation",
            statement_for_psycopg(suite_query, relations),
            {"environment": spec.environment},
        )
        timings.append(
            measure(conn, timed, warmup=spec.validation_warmup, runs=spec.validation_runs)
        )
    return timings


def timings_frame(timings: Iterable[QueryTiming], spec: ExpectationsFile) -> pd.DataFrame:
    """One row per timed query, plus the total of the suite's queries, with budgets and goals."""
    import pandas as pd

    rows = [
        {
            "query": t.name,
            "kind": t.kind,
            "runs": t.runs,
            "rows": t.rows,
            "p50_ms": t.p50_ms,
            "p95_ms": t.p95_ms,
            "max_ms": t.max_ms,
            "windows": t.windows,
            "repeats": t.repeats,
        }
        for t in timings
    ]
    suite_rows = [r for r in rows if r["kind"] == "validation"]
    rows.append(
        {
            "query": VALIDATION_TOTAL,
            "kind": "total",
            "runs": min((r["runs"] for r in suite_rows), default=0),
            "rows": sum(r["rows"] for r in suite_rows),
            "p50_ms": sum(r["p50_ms"] for r in suite_rows),
            "p95_ms": sum(r["p95_ms"] for r in suite_rows),
            "max_ms": sum(r["max_ms"] for r in suite_rows),
            "windows": 1,
            "repeats": 1,
        }
    )
    frame = pd.DataFrame(rows)
    frame["budget_p95_ms"] = frame["query"].map(spec.budgets_ms)
    frame["goal_p95_ms"] = frame["query"].map(spec.goals_ms)
    return frame


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """One expectation's outcome, in words."""

    suite: str
    check: str
    label: str
    observed: str
    expected: str
    success: bool
    message: str  # empty when it passed; otherwise what was found, readable on its own


@dataclass(frozen=True)
class ValidationReport:
    target: str
    environment: str
    expectations_path: Path
    server: str
    checks: tuple[CheckResult, ...]
    timings: pd.DataFrame
    import_seconds: float
    setup_seconds: float
    timing_seconds: float
    checkpoint_seconds: float
    checkpoint_budget_seconds: float
    docs_index: Path
    checkpoint_success: bool = True
    gx_was_loaded: bool = False  # great_expectations was already imported in this process
    timings_mode: str = "gate"
    load_average: tuple[float, float, float] | None = None  # of the machine, when timed

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.success)

    @property
    def data_failures(self) -> tuple[CheckResult, ...]:
        """Failed expectations about the data (everything but the query timings)."""
        return tuple(c for c in self.failures if c.suite != "query_timings")

    @property
    def timing_failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.failures if c.suite == "query_timings")

    @property
    def data_success(self) -> bool:
        ran_checks = bool(self.checks) and all(r.observed != "not run" for r in self.checks)
        return (
            ran_checks
            and not self.data_failures
            and (self.checkpoint_success or bool(self.timing_failures))
        )

    @property
    def success(self) -> bool:
        """The data passed, and the timings too unless they only report."""
        return self.data_success and (self.timings_mode != "gate" or not self.timing_failures)

    @property
    def exit_code(self) -> int:
        """0 passed; 1 a data expectation failed; 3 only a gated timing budget was missed."""
        if not self.data_success:
            return EXIT_DATA_FAILURE
        return EXIT_PASS if self.success else EXIT_TIMING_FAILURE

    def check(self, key: str) -> CheckResult:
        """The result of one expectation by its key (e.g. "orphan_memberships")."""
        for result in self.checks:
            if result.check == key:
                return result
        raise KeyError(key)


# --- Great Expectations -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Check:
    suite: str
    key: str
    label: str
    expected: str
    expectation: Any  # a great_expectations Expectation


def connection_url(settings: Mapping[str, str]) -> str:
    """A SQLAlchemy URL (psycopg 3) from PG* settings; a PGHOST directory means a socket."""
    from sqlalchemy.engine import URL

    query = {
        key: settings[name]
        for name, key in (("PGHOST", "host"), ("PGPORT", "port"))
        if settings.get(name)
    }
    url = URL.create(
        "postgresql+psycopg",
        username=settings.get("PGUSER") or None,
        password=settings.get("PGPASSWORD") or None,
        database=settings.get("PGDATABASE") or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def _declare_checks(
    gx: Any, spec: ExpectationsFile, gx_queries: Mapping[str, str], *, timed: bool = True
) -> list[_Check]:
    gxe = gx.expectations
    column = gxe.row_conditions.Column
    checks: list[_Check] = []

    def add(suite: str, key: str, label: str, expected: str, expectation: Any) -> None:
        expectation.meta = {"check": key}
        checks.append(_Check(suite, key, label, expected, expectation))

    def rows(key: str, description: str) -> Any:
        return gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=gx_queries[key], description=description
        )

    for key, label in COUNT_LABELS.items():
        band = spec.counts[key]
        add(
            "counts",
            key,
            label,
            band.text,
            gxe.ExpectColumnMaxToBeBetween(
                column=key, min_value=band.minimum, max_value=band.maximum
            ),
        )
    type_set, environment_set = ", ".join(GROUP_TYPES), ", ".join(ENVIRONMENTS)
    add(
        "definition_groups",
        "type_in_set",
        "type in its set",
        type_set,
        gxe.ExpectColumnValuesToBeInSet(column="type", value_set=list(GROUP_TYPES)),
    )
    add(
        "definition_groups",
        "type_not_null",
        "type not null",
        "no NULL",
        gxe.ExpectColumnValuesToNotBeNull(column="type"),
    )
    add(
        "definition_groups",
        "environment_in_set",
        "environment in its set",
        environment_set,
        gxe.ExpectColumnValuesToBeInSet(column="environment", value_set=list(ENVIRONMENTS)),
    )
    add(
        "definition_groups",
        "environment_not_null",
        "environment not null",
        "no NULL",
        gxe.ExpectColumnValuesToNotBeNull(column="environment"),
    )
    add(
        "definition_groups",
        "duplicate_groups",
        "unique (name, type, environment)",
        "0 duplicates",
        rows("duplicate_groups", "No two groups share (name, type, environment)."),
    )
    add(
        "definition_groups",
        "empty_groups",
        "ETF and THEME groups without members",
        "none",
        rows(
            "empty_groups",
            f"Every ETF and THEME group of {spec.environment} has at least one membership.",
        ),
    )
    add(
        "group_memberships",
        "orphan_memberships",
        "orphan memberships",
        "none",
        rows("orphan_memberships", "Every membership's group_id names a definition_groups row."),
    )
    add(
        "group_memberships",
        "duplicate_memberships",
        "unique (group_id, symbol)",
        "0 duplicates",
        rows("duplicate_memberships", "No symbol appears twice in one group."),
    )
    add(
        "group_memberships",
        "weight_range",
        "weights in [0, 1] where present",
        "0 out of range",
        gxe.ExpectColumnValuesToBeBetween(column="weight", min_value=0, max_value=1),
    )
    add(
        "group_memberships",
        "legacy_parity",
        "ETF/THEME members = legacy lists",
        "0 mismatches",
        rows(
            "legacy_parity",
            f"For every ETF and theme of {spec.environment}, the member set equals the legacy "
            "JSON array (trimmed, upper-cased) minus the elements migration_exceptions "
            "records as errors.",
        ),
    )
    for query in (*ANALYST_QUERIES, VALIDATION_TOTAL) if timed else ():
        budget = spec.budgets_ms[query]
        add(
            "query_timings",
            f"p95_{query}",
            f"p95 {QUERY_LABELS[query]}",
            f"≤ {budget:g} ms",
            gxe.ExpectColumnMaxToBeBetween(
                column="p95_ms", max_value=budget, row_condition=column("query") == query
            ),
        )
    return checks


def _exception_message(exception_info: Any) -> str:
    """The first exception message anywhere in GX's exception_info (its shape varies)."""
    if isinstance(exception_info, Mapping):
        if exception_info.get("raised_exception") and exception_info.get("exception_message"):
            return str(exception_info["exception_message"])
        for value in exception_info.values():
            found = _exception_message(value)
            if found:
                return found
    return ""


def _format_row(row: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in row.items())


def _describe_result(check: _Check, result: Any) -> CheckResult:
    outcome = result.result or {}
    kind = result.expectation_config.type
    observed, details = "", ""
    if kind == "unexpected_rows_expectation":
        count = outcome.get("observed_value")
        found = (outcome.get("details") or {}).get("unexpected_rows") or []
        observed = "" if count is None else f"{count:,}"
        if found:
            shown = "; ".join(_format_row(row) for row in found[:SHOWN_ROWS])
            more = f" (and {count - SHOWN_ROWS:,} more)" if count and count > SHOWN_ROWS else ""
            details = f"{count:,} row(s): {shown}{more}"
    elif kind == "expect_column_max_to_be_between":
        value = outcome.get("observed_value")
        if value is None:
            observed = "none"
        elif check.suite == "query_timings":
            observed = f"{float(value):.2f} ms"
        else:
            observed = f"{int(value):,}"
    else:
        unexpected = outcome.get("unexpected_count")
        total = outcome.get("element_count")
        if unexpected is not None:
            observed = f"{unexpected:,} of {total:,}" if total is not None else f"{unexpected:,}"
        if unexpected:
            sample = outcome.get("partial_unexpected_list") or []
            details = "unexpected values: " + ", ".join(repr(v) for v in sample[:SHOWN_ROWS])
    error = _exception_message(result.exception_info).strip().split("\n", 1)[0][:300]
    if error:
        observed = observed or "error"
        details = f"{details}; {error}" if details else error
    message = ""
    if not result.success:
        message = f"{check.label}: observed {observed or 'nothing'}, expected {check.expected}"
        if details:
            message += f" — {details}"
    return CheckResult(
        suite=check.suite,
        check=check.key,
        label=check.label,
        observed=observed,
        expected=check.expected,
        success=bool(result.success),
        message=message,
    )


def _collect(checks: list[_Check], checkpoint_result: Any) -> tuple[CheckResult, ...]:
    """Results back in declaration order (GX returns them in its own order)."""
    by_key: dict[str, Any] = {}
    for suite_result in checkpoint_result.run_results.values():
        for result in suite_result.results:
            key = (result.expectation_config.meta or {}).get("check")
            if key:
                by_key[key] = result
    collected = []
    for check in checks:
        result = by_key.get(check.key)
        if result is None:
            collected.append(
                CheckResult(
                    check.suite, check.key, check.label, "not run", check.expected, False,
                    f"{check.label}: Great Expectations returned no result",
                )
            )  # fmt: skip
        else:
            collected.append(_describe_result(check, result))
    return tuple(collected)


def _run_checkpoint(
    gx: Any,
    *,
    target: str,
    settings: Mapping[str, str],
    relations: Relations,
    checks: list[_Check],
    gx_queries: Mapping[str, str],
    timings_csv: Path,
    docs_dir: Path,
    run_name: str,
) -> tuple[Any, float, float]:
    """Context, sources, suites and one checkpoint; returns (result, setup s, run s).

    The context is a file context kept beside the Data Docs (``<docs>/history``), so its
    validation results accumulate: the Data Docs index lists every run of the target, each
    under ``run_name``.  Sources, suites and definitions are replaced on every run."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    started = time.perf_counter()
    url_variable = "SPRINT59_VALIDATION_PG_URL"
    _forget_previous_definitions(docs_dir / HISTORY_DIR)
    context = gx.get_context(
        mode="file",
        project_root_dir=str(docs_dir / HISTORY_DIR),
        runtime_environment={url_variable: connection_url(settings)},
    )
    context.variables.progress_bars = ProgressBarsConfig(globally=sys.stdout.isatty())
    if DOCS_SITE not in context.get_site_names():
        context.add_data_docs_site(
            DOCS_SITE,
            {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    for name in ("migration", "timings"):
        if name in context.data_sources.all():
            context.data_sources.delete(name)
    try:
        postgres = context.data_sources.add_postgres(
            "migration", connection_string="${" + url_variable + "}"
        )
    except Exception as exc:
        raise UserFacingError(
            f"Great Expectations cannot connect to PostgreSQL at {describe(settings)} "
            f"({type(exc).__name__}); check the PG* settings."
        ) from exc
    batches = {
        "counts": postgres.add_query_asset(
            "environment_counts", query=gx_queries["environment_counts"]
        ),
        "definition_groups": postgres.add_table_asset(
            "definition_groups",
            table_name=relations.groups.name,
            schema_name=relations.groups.schema,
        ),
        "group_memberships": postgres.add_table_asset(
            "group_memberships",
            table_name=relations.memberships.name,
            schema_name=relations.memberships.schema,
        ),
        "query_timings": context.data_sources.add_pandas("timings").add_csv_asset(
            "query_timings", filepath_or_buffer=timings_csv
        ),
    }
    definitions = []
    for suite_key, asset in batches.items():
        if not any(check.suite == suite_key for check in checks):
            continue  # the timings, when they are off
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(name=f"sprint59_{target}.{suite_key}")
        )
        for check in checks:
            if check.suite == suite_key:
                suite.add_expectation(check.expectation)
        batch = (
            asset.add_batch_definition_whole_dataframe("all")
            if suite_key == "query_timings"
            else asset.add_batch_definition_whole_table("all")
        )
        definitions.append(
            context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=f"{target}.{suite_key}", data=batch, suite=suite)
            )
        )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"sprint59_{target}",
            validation_definitions=definitions,
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])],
            result_format={"result_format": "COMPLETE"},
        )
    )
    ran = time.perf_counter()
    result = checkpoint.run(run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(UTC)))
    return result, ran - started, time.perf_counter() - ran


def run_validation(
    settings: Mapping[str, str],
    target: str,
    *,
    docs_dir: Path,
    manifest_path: Path | None = None,
    expectations_path: Path | None = None,
    progress: Callable[[str], None] | None = None,
    timings_mode: str = "gate",
) -> ValidationReport:
    """Validate one environment's migrated tables; raise UserFacingError when it cannot run.

    ``timings_mode``: gate (budgets fail the result), report (shown only) or off."""
    if timings_mode not in TIMING_MODES:
        raise UserFacingError(
            f"Unknown timings mode {timings_mode!r}; use one of {', '.join(TIMING_MODES)}."
        )
    say = progress or (lambda _message: None)
    environment = environment_for(target)
    spec = load_expectations(expectations_path or default_expectations_path(target), environment)
    if manifest_path is not None:
        targets.read_manifest(manifest_path, target)  # a broken manifest says so before connecting

    with connect(settings, autocommit=True) as conn:
        database = str(conn.execute("select current_database()").fetchone()[0])  # type: ignore[index]
        tables = targets.locate(target, database, manifest=manifest_path)
        say(f"tables: {tables.found_by}")
        relations = relations_of(tables, database)
        check_relations_exist(conn, relations, target, tables)
        server = f"PostgreSQL {conn.info.parameter_status('server_version') or '?'}"
        started = time.perf_counter()
        load = load_average()
        timings = [] if timings_mode == "off" else measure_queries(conn, relations, spec, say)
        timing_seconds = time.perf_counter() - started
        gx_queries = {
            q.name: statement_for_gx(q, relations, environment, conn) for q in SUITE_QUERIES
        }
    frame = timings_frame(timings, spec)
    docs_dir = docs_dir.resolve()
    docs_dir.mkdir(parents=True, exist_ok=True)
    timings_csv = docs_dir / TIMINGS_CSV
    frame.to_csv(timings_csv, index=False)

    say("importing great_expectations")
    gx_was_loaded = "great_expectations" in sys.modules
    started = time.perf_counter()
    import great_expectations as gx

    import_seconds = time.perf_counter() - started
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        checks = _declare_checks(gx, spec, gx_queries, timed=timings_mode != "off")
        say(f"running the checkpoint ({len(checks)} expectations, 4 suites)")
        result, setup_seconds, checkpoint_seconds = _run_checkpoint(
            gx,
            target=target,
            settings=settings,
            relations=relations,
            checks=checks,
            gx_queries=gx_queries,
            timings_csv=timings_csv,
            docs_dir=docs_dir,
            run_name=run_name(target, tables),
        )
    return ValidationReport(
        target=target,
        environment=environment,
        expectations_path=spec.path,
        server=server,
        checks=_collect(checks, result),
        timings=frame,
        import_seconds=import_seconds,
        setup_seconds=setup_seconds,
        timing_seconds=timing_seconds,
        checkpoint_seconds=checkpoint_seconds,
        checkpoint_budget_seconds=spec.checkpoint_seconds,
        docs_index=docs_dir / "index.html",
        checkpoint_success=bool(result.success),
        gx_was_loaded=gx_was_loaded,
        timings_mode=timings_mode,
        load_average=load,
    )


# --- the printed table ------------------------------------------------------------------------


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = []
    for row in (header, *rows):
        lines.append(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def format_report(report: ValidationReport) -> str:
    """A compact table (expectation, observed, expected, pass/fail), the timings and the figures."""
    lines = [
        f"Validation of {report.environment} (target {report.target}) on {report.server}, "
        f"expectations {report.expectations_path.name}",
        "",
    ]
    lines += _table(
        ("suite", "expectation", "observed", "expected", "result"),
        [
            (c.suite, c.label, c.observed, c.expected, "pass" if c.success else "FAIL")
            for c in report.checks
        ],
    )
    if report.failures:
        lines += ["", "Failures:"]
        lines += [f"  - {c.message}" for c in report.failures]
    lines += ["", *_timings_lines(report)]
    over = report.checkpoint_seconds > report.checkpoint_budget_seconds
    if report.success:
        verdict = "PASS"
    elif report.data_success:
        verdict = "FAIL (timings only: every data expectation was met)"
    else:
        verdict = "FAIL"
    if report.success and report.timing_failures:
        verdict += " (timing budgets missed, reported only)"
    lines += [
        "",
        f"import great_expectations: {report.import_seconds:.2f} s"
        f"{' (already loaded)' if report.gx_was_loaded else ''}; "
        f"checkpoint run: {report.checkpoint_seconds:.2f} s "
        f"(target < {report.checkpoint_budget_seconds:g} s{', OVER' if over else ''}); "
        f"GX setup {report.setup_seconds:.2f} s; query timing {report.timing_seconds:.2f} s",
        f"Data Docs: {report.docs_index}",
        f"Result: {verdict} "
        f"({len(report.checks) - len(report.failures)} of {len(report.checks)} expectations met)",
    ]
    return "\n".join(lines)


def _timings_lines(report: ValidationReport) -> list[str]:
    if report.timings_mode == "off":
        return ["Query timings: not measured (--timings off)."]
    role = "gate" if report.timings_mode == "gate" else "are reported only"
    lines = [
        f"Query timings (psycopg, client side, after warm-up; budgets {role}, goals do not; a "
        "missed budget is measured again in fresh windows, each sample there the fastest of "
        "back-to-back runs, and the best window counts):",
    ]
    if report.load_average is not None:
        one, five, fifteen = report.load_average
        lines.append(
            f"  machine load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on "
            f"{os.cpu_count() or '?'} CPUs"
        )
    timing_rows = []
    for row in report.timings.itertuples(index=False):
        budget = "" if _missing(row.budget_p95_ms) else f"{row.budget_p95_ms:g}"
        goal, met = "", ""
        if not _missing(row.goal_p95_ms):
            goal = f"{row.goal_p95_ms:g}"
            met = "yes" if row.p95_ms <= row.goal_p95_ms else "no"
        timing_rows.append(
            (
                str(row.query),
                str(row.runs),
                str(row.windows) if row.repeats == 1 else f"{row.windows} (min of {row.repeats})",
                "" if row.kind == "total" else f"{row.rows:,}",
                f"{row.p50_ms:.2f}",
                f"{row.p95_ms:.2f}",
                budget,
                goal,
                met,
            )
        )
    lines += _table(
        ("query", "runs", "windows", "rows", "p50 ms", "p95 ms", "budget", "goal", "goal met"),
        timing_rows,
    )
    return lines


def _forget_previous_definitions(project_root: Path) -> None:
    """The history keeps validation results, not definitions: the previous run's checkpoint
    and validation definitions name relations, files and suites that may have changed
    (another schema, a temporary CSV, timings off), and GX cannot load one whose parts are
    gone, so they are removed before the context opens (sources are replaced after)."""
    import shutil

    for folder in ("checkpoints", "validation_definitions"):
        shutil.rmtree(project_root / "gx" / folder, ignore_errors=True)


def run_name(target: str, tables: targets.Tables) -> str:
    """How a run is listed in Data Docs: the target, when, and the dbt build it checked."""
    build = "no manifest"
    if tables.manifest is not None:
        try:
            metadata = json.loads(tables.manifest.read_text(encoding="utf-8"))["metadata"]
            build = f"dbt invocation {str(metadata['invocation_id'])[:8]}"
            build += f" of {str(metadata.get('generated_at', ''))[:19]}"
        except (OSError, ValueError, KeyError, TypeError):
            build = "an unreadable manifest"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{target} {stamp}, build: {build}"


def report_as_dict(report: ValidationReport) -> dict[str, Any]:
    """The result for machines (``validate --json``): the verdict, its exit code, every
    expectation and every timing, as plain JSON values."""
    timings = [
        {key: (None if _missing(value) else value) for key, value in row.items()}
        for row in report.timings.to_dict("records")
    ]
    return {
        "target": report.target,
        "environment": report.environment,
        "server": report.server,
        "expectations_file": str(report.expectations_path),
        "success": report.success,
        "data_success": report.data_success,
        "exit_code": report.exit_code,
        "timings_mode": report.timings_mode,
        "load_average": list(report.load_average) if report.load_average else None,
        "checks": [
            {
                "suite": c.suite,
                "check": c.check,
                "label": c.label,
                "observed": c.observed,
                "expected": c.expected,
                "success": c.success,
                "message": c.message,
            }
            for c in report.checks
        ],
        "timings": timings if report.timings_mode != "off" else [],
        "seconds": {
            "import": report.import_seconds,
            "setup": report.setup_seconds,
            "query_timing": report.timing_seconds,
            "checkpoint": report.checkpoint_seconds,
        },
        "data_docs": str(report.docs_index),
    }


def _missing(value: Any) -> bool:
    return value is None or value != value  # NaN
