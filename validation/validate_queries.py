"""What the suite asks the database: the relations it reads (where dbt's manifest says they are),
the suite's own SQL (one template per check, run by psycopg when timed and by Great Expectations
when validated), and the timing of the analysts' queries and the suite's queries with psycopg.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from validation import targets
from validation.errors import UserFacingError
from validation.timings import (
    QueryTiming,
    Relation,
    TimedQuery,
    analyst_queries,
    measure,
    measure_within,
)
from validation.validate_compat import COMPAT_ROUND_TRIP_SQL, compat_relation, legacy_rules
from validation.validate_expectations import VALIDATION_TOTAL, ExpectationsFile

if TYPE_CHECKING:
    import pandas as pd

# --- relations from dbt's manifest ------------------------------------------------------------


@dataclass(frozen=True)
class Relations:
    """The relations the suite reads: the two tables, the exceptions, the legacy cache, and
    the ledger of the rows the migration wrote (beside the two tables)."""

    groups: Relation
    memberships: Relation
    exceptions: Relation
    cache: Relation
    ledger_groups: Relation
    ledger_memberships: Relation
    symbol_memberships: Relation
    group_summary: Relation
    etf_overlap: Relation
    group_holdings: Relation
    # the compatibility relation (validation/validate_compat.py); None: not located
    compat: Relation | None = None


ANALYST_TABLES = ("symbol_memberships", "group_summary", "etf_overlap", "group_holdings")
LEDGER_GROUPS = "migration_ledger_groups"
LEDGER_MEMBERSHIPS = "migration_ledger_memberships"


def relations_of(tables: targets.Tables, database: str) -> Relations:
    """The relations the suite reads, where validation/targets.py found them."""

    def relation(found: targets.Relation) -> Relation:
        return Relation(database, found.schema, found.name)

    return Relations(
        relation(tables.groups),
        relation(tables.memberships),
        relation(tables.exceptions),
        relation(tables.cache),
        Relation(database, tables.groups.schema, LEDGER_GROUPS),
        Relation(database, tables.groups.schema, LEDGER_MEMBERSHIPS),
        *(Relation(database, tables.groups.schema, name) for name in ANALYST_TABLES),
        compat=compat_relation(database, tables.groups.schema, tables.target),
    )


def check_relations_exist(
    conn: psycopg.Connection[Any], relations: Relations, target: str, tables: targets.Tables
) -> None:
    database = relations.groups.database
    compat = ("compat",) if relations.compat else ()
    for key in ("groups", "memberships", "exceptions", "cache", "ledger_groups", *ANALYST_TABLES,
                *compat):  # fmt: skip
        relation: Relation = getattr(relations, key)
        row = conn.execute(
            "select to_regclass(%s)", (relation.identifier().as_string(conn),)
        ).fetchone()
        if row is None or row[0] is None:
            if key == "cache":
                raise UserFacingError(
                    f"The legacy table {relation} does not exist in {database}"
                    f"{tables.looked_in()}; name the schema that holds cache_entries with "
                    "--source-schema (or DBT_SOURCE_SCHEMA), or point PGDATABASE at the "
                    "database the migration reads."
                )
            if key == "ledger_groups":
                raise UserFacingError(
                    f"{relation}, the record of the rows the migration wrote, does not exist "
                    f"in {database}: the tables were built by an earlier release; run "
                    f"dbt build --target {target} once with this one (it keeps every id)."
                )
            raise UserFacingError(
                f"Table {relation} does not exist in {database}{tables.looked_in()}; "
                f"run dbt build --target {target} first."
            )


# --- the suite's SQL --------------------------------------------------------------------------
# Templates for psycopg.sql: {groups}, {memberships}, {exceptions}, {cache} are the manifest's
# relations, {ledger_groups} and {ledger_memberships} the ledger of the rows the migration wrote,
# {environment} the environment (a parameter when timed, a literal for GX) and {batch} the
# relation GX validates (Great Expectations substitutes it itself).  No other braces, no "%".
# Counts and parity are about the migration's own rows (the ledger): other writers' rows in
# the same tables are reported beside the result (other_writers), never counted.
# GX aliases {batch} itself unless the query contains JOIN; then the query must alias it
# ("{batch} as memberships"), which also reads right when psycopg puts the table name there.

COUNTS_SQL = """
select
    count(*) filter (where owned.type = 'ETF') as etf_groups,
    count(*) filter (where owned.type = 'THEME') as theme_groups,
    count(*) filter (where owned.type = 'SECTOR') as sector_groups,
    (
        select count(distinct m.symbol)
        from {memberships} as m
        inner join {ledger_memberships} as lm on m.id = lm.membership_id
        inner join {ledger_groups} as l on m.group_id = l.group_id
        where l.environment = {environment}
    ) as distinct_symbols,
    (
        select count(*)
        from {memberships} as m
        inner join {ledger_memberships} as lm on m.id = lm.membership_id
        inner join {groups} as g on m.group_id = g.id
        inner join {ledger_groups} as l on g.id = l.group_id
        where l.environment = {environment} and g.type in ('ETF', 'THEME')
    ) as etf_theme_memberships
from (
    select g.type
    from {groups} as g
    inner join {ledger_groups} as l on g.id = l.group_id
    where l.environment = {environment}
) as owned
"""

DUPLICATE_GROUPS_SQL = """
with batch_rows as (select * from {batch})
select name, type, environment, count(*) as copies
from batch_rows
group by name, type, environment
having count(*) > 1
"""

EMPTY_GROUPS_SQL = """
with batch_rows as (select * from {batch} as groups)
select g.type, g.name
from batch_rows as g
inner join {ledger_groups} as l on g.id = l.group_id
where
    l.environment = {environment}
    and g.type in ('ETF', 'THEME')
    and not exists (select 1 from {memberships} as m where m.group_id = g.id)
"""

GROUP_VALUE_SETS_SQL = (
    """
select count(*) as unexpected
from {batch}
where
    type is null or type not in ('ETF', 'THEME', 'SECTOR', 'SEGMENT', 'CUSTOM')
    or environment is null or environment not in """
    + targets.ENVIRONMENTS_SQL
    + "\n"
)

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

# Every ETF and theme of the environment: its members must be the legacy JSON lists (every
# list the value has; trimmed and upper-cased by the models' macro) minus the elements, or
# whole entries, that the migration recorded as error-level exceptions.  The environment and
# the type and the symbols are read by the models' macros (legacy_environment, legacy_type,
# legacy_symbol: _names).
# Returns one row per symbol on one side only.
# Which parity check guards what: the description of cache_entry_reconciliation
# (models/marts/operations/_operations.yml).
PARITY_SQL = """
with batch_rows as (select * from {batch} as memberships),
legacy_entries as (
    select
        c.id as cache_entry_id,
        case {legacy_type} when 'etf_holdings' then 'ETF' else 'THEME' end as group_type,
        c.key as group_name,
        c.value
    from {cache} as c
    where
        {legacy_type} in ('etf_holdings', 'theme_definition')
        and {legacy_environment} = {environment}
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
legacy_lists as (
    -- every member list the value has, the type's own first: an element's position is its
    -- place in the lists read one after the other
    select
        e.cache_entry_id,
        e.group_type,
        e.group_name,
        e.value -> lists.list_key as member_list,
        coalesce(sum(jsonb_array_length(e.value -> lists.list_key)) over (
            partition by e.cache_entry_id
            order by lists.list_order
            rows between unbounded preceding and 1 preceding
        ), 0) as offset_before
    from legacy_entries as e
    cross join lateral unnest(
        case e.group_type
            when 'ETF' then array['holdings', 'symbols', 'stocks', 'etfs']
            else array['symbols', 'stocks', 'etfs', 'holdings']
        end
    ) with ordinality as lists (list_key, list_order)
    where jsonb_typeof(e.value -> lists.list_key) = 'array'
),
legacy_members as (
    select distinct
        e.group_type,
        e.group_name,
        {legacy_symbol} as symbol
    from legacy_lists as e
    cross join lateral
        jsonb_array_elements(e.member_list) with ordinality as listed (element, position)
    cross join lateral (
        select case jsonb_typeof(listed.element)
            when 'string' then jsonb_build_array(listed.element) ->> 0
            when 'object'
                then coalesce(listed.element ->> 'symbol', listed.element ->> 'ticker')
        end as symbol
    ) as listed_text
    where not exists (
        select 1
        from {exceptions} as x
        where
            x.cache_entry_id = e.cache_entry_id
            and x.severity = 'error'
            and x.element_position = e.offset_before + listed.position
    )
),
migrated_members as (
    -- the members of the migration's groups; another writer's row counts where it holds a
    -- listed symbol (the migration then writes none) and is otherwise only reported
    select
        g.type as group_type,
        g.name as group_name,
        m.symbol,
        exists (select 1 from {ledger_memberships} as lm where lm.membership_id = m.id)
            as is_owned
    from batch_rows as m
    inner join {groups} as g on m.group_id = g.id
    inner join {ledger_groups} as l on g.id = l.group_id
    where l.environment = {environment} and g.type in ('ETF', 'THEME')
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
where (l.group_name is null and n.is_owned) or n.group_name is null
order by 2, 3
"""


# The analyst tables, each against the two tables it is derived from (the migration's rows,
# its ledger, as the models read them: docs/design.md §10), recomputed here independently of
# the models: every row that differs, on either side, is unexpected.  An empty, stale or
# partial analyst table fails.  Each is validated as its own batch ({batch}: the table).
OWNED_MEMBERS_CTE = """
owned_members as (
    select g.id as group_id, g.type, g.name, m.symbol, m.weight, m.metadata
    from {memberships} as m
    inner join {ledger_memberships} as lm on m.id = lm.membership_id
    inner join {groups} as g on m.group_id = g.id
    where g.environment = {environment}
)"""


def _analyst_table_check(table: str, ctes: str, order_by: str = "2, 1") -> str:
    """The check of one analyst table: ``ctes`` (after owned_members) define ``mart``, the
    table's rows in the compared types, and ``expected``, the same recomputed from the two
    tables; every row on one side only comes back, with what is wrong with it."""
    # S608: constant texts joined, no input; the relations and the environment come in later
    # through psycopg.sql
    return (
        "with"  # noqa: S608
        + OWNED_MEMBERS_CTE
        + ",\n"
        + ctes.strip("\n")
        + f"""
select 'missing or different in {table}' as problem, missing.*
from (select * from expected except select * from mart) as missing
union all
select 'in {table}, not in the two tables' as problem, extra.*
from (select * from mart except select * from expected) as extra
order by {order_by}
"""  # noqa: S608
    )


SYMBOL_MEMBERSHIPS_SQL = _analyst_table_check(
    "symbol_memberships",
    """
mart as (
    select
        symbol::text as symbol,
        etfs::text[] as etfs,
        themes::text[] as themes,
        sector::text as sector,
        industry::text as industry,
        custom_groups::text[] as custom_groups,
        group_count::bigint as group_count
    from {batch} as mart
    where environment = {environment}
),
expected as (
    select
        symbol::text as symbol,
        coalesce(array_agg(name::text order by name) filter (where type = 'ETF'), array[]::text[])
            as etfs,
        coalesce(
            array_agg(name::text order by name) filter (where type = 'THEME'), array[]::text[]
        ) as themes,
        min(name::text) filter (where type = 'SECTOR') as sector,
        min(metadata ->> 'industry') filter (where type = 'SECTOR') as industry,
        coalesce(
            array_agg(name::text order by name) filter (where type = 'CUSTOM'), array[]::text[]
        ) as custom_groups,
        count(*)::bigint as group_count
    from owned_members
    group by symbol
)
""",
)

GROUP_SUMMARY_SQL = _analyst_table_check(
    "group_summary",
    """
mart as (
    select
        group_id::bigint as group_id,
        type::text as type,
        name::text as name,
        member_count::bigint as member_count,
        weighted_member_count::bigint as weighted_member_count,
        total_weight::numeric as total_weight
    from {batch} as mart
    where environment = {environment}
),
expected as (
    select
        g.id::bigint as group_id,
        g.type::text as type,
        g.name::text as name,
        count(o.symbol)::bigint as member_count,
        count(o.weight)::bigint as weighted_member_count,
        sum(o.weight)::numeric as total_weight
    from {groups} as g
    inner join {ledger_groups} as l on g.id = l.group_id
    left join owned_members as o on g.id = o.group_id
    where g.environment = {environment}
    group by g.id, g.type, g.name
)
""",
)

ETF_OVERLAP_SQL = _analyst_table_check(
    "etf_overlap",
    """
etf_members as (
    select o.name::text as etf, o.symbol
    from owned_members as o
    inner join {ledger_groups} as l on o.group_id = l.group_id
    where o.type = 'ETF'
),
sizes as (
    select etf, count(*)::bigint as holdings from etf_members group by etf
),
mart as (
    select
        etf::text as etf,
        other_etf::text as other_etf,
        shared_symbols::bigint as shared_symbols,
        etf_holdings::bigint as etf_holdings,
        other_etf_holdings::bigint as other_etf_holdings
    from {batch} as mart
    where environment = {environment}
),
expected as (
    select
        this_etf.etf,
        other_etf.etf as other_etf,
        count(*)::bigint as shared_symbols,
        this_size.holdings as etf_holdings,
        other_size.holdings as other_etf_holdings
    from etf_members as this_etf
    inner join etf_members as other_etf
        on this_etf.symbol = other_etf.symbol and this_etf.etf <> other_etf.etf
    inner join sizes as this_size on this_etf.etf = this_size.etf
    inner join sizes as other_size on other_etf.etf = other_size.etf
    group by this_etf.etf, other_etf.etf, this_size.holdings, other_size.holdings
)
""",
    order_by="2, 3, 1",
)

GROUP_HOLDINGS_SQL = _analyst_table_check(
    "group_holdings",
    """
mart as (
    select
        group_id::bigint as group_id,
        type::text as type,
        name::text as name,
        member_count::bigint as member_count,
        symbols::text[] as symbols,
        weights::numeric[] as weights,
        positions::integer[] as positions
    from {batch} as mart
    where environment = {environment}
),
positioned as (
    select
        group_id,
        symbol::text as symbol,
        weight::numeric as weight,
        case
            when jsonb_typeof(metadata -> 'position') = 'number'
                then (metadata ->> 'position')::numeric
        end as position
    from owned_members
),
expected as (
    select
        g.id::bigint as group_id,
        g.type::text as type,
        g.name::text as name,
        count(p.symbol)::bigint as member_count,
        coalesce(
            array_agg(p.symbol order by p.position nulls last, p.symbol)
                filter (where p.symbol is not null),
            array[]::text[]
        ) as symbols,
        case
            when count(p.weight) > 0
                then array_agg(p.weight order by p.position nulls last, p.symbol)
        end as weights,
        coalesce(
            array_agg(p.position::integer order by p.position nulls last, p.symbol)
                filter (where p.symbol is not null),
            array[]::integer[]
        ) as positions
    from {groups} as g
    inner join {ledger_groups} as l on g.id = l.group_id
    left join positioned as p on g.id = p.group_id
    where g.environment = {environment}
    group by g.id, g.type, g.name
)
""",
)


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

# Not timed with the suite: they recompute the analyst tables (the cost of the models
# themselves), which the validation queries' budget is not about.
ANALYST_TABLE_QUERIES: tuple[SuiteQuery, ...] = (
    SuiteQuery("symbol_memberships_match", SYMBOL_MEMBERSHIPS_SQL, "symbol_memberships"),
    SuiteQuery("group_summary_match", GROUP_SUMMARY_SQL, "group_summary"),
    SuiteQuery("etf_overlap_match", ETF_OVERLAP_SQL, "etf_overlap"),
    SuiteQuery("group_holdings_match", GROUP_HOLDINGS_SQL, "group_holdings"),
)

# The round trip (docs/design.md §13): the compatibility relation against the legacy cache.
ROUND_TRIP_QUERIES: tuple[SuiteQuery, ...] = (
    SuiteQuery("compat_round_trip", COMPAT_ROUND_TRIP_SQL, "compat"),
)


def _names(relations: Relations) -> dict[str, sql.Composable]:
    return {
        "groups": relations.groups.identifier(),
        "memberships": relations.memberships.identifier(),
        "exceptions": relations.exceptions.identifier(),
        "cache": relations.cache.identifier(),
        "ledger_groups": relations.ledger_groups.identifier(),
        "ledger_memberships": relations.ledger_memberships.identifier(),
        **{name: getattr(relations, name).identifier() for name in ANALYST_TABLES},
        **({"compat": relations.compat.identifier()} if relations.compat else {}),
        # the legacy text read as the models read it (macros/sql_helpers/normalisation.sql)
        "legacy_environment": targets.environment_of(sql.Identifier("c", "environment")),
        "legacy_type": targets.read_as("normalised_cache_type", sql.Identifier("c", "type")),
        "legacy_symbol": targets.read_as("folded_symbol", sql.Identifier("listed_text", "symbol")),
        **legacy_rules(),
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
    """The query as GX runs it: {batch} left for GX, the environment a quoted literal, every
    other brace doubled (GX fills the query with str.format: a JSON path '{}' or a regex
    quantifier of the project's rules would be read as a placeholder)."""
    marker = "\x00batch\x00"
    composed = sql.SQL(query.template).format(
        **_names(relations), batch=sql.SQL(marker), environment=sql.Literal(environment)
    )
    text = composed.as_string(conn).strip().replace("{", "{{").replace("}", "}}")
    return text.replace(marker, "{batch}")


# --- timings ----------------------------------------------------------------------------------


def measure_queries(
    conn: psycopg.Connection[Any],
    relations: Relations,
    spec: ExpectationsFile,
    progress: Callable[[str], None],
) -> list[QueryTiming]:
    """Time the four analyst queries and every query of the suite (psycopg, parameters)."""
    timings = []
    for query in analyst_queries(
        relations.groups,
        relations.memberships,
        relations.group_holdings,
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


# --- other writers ----------------------------------------------------------------------------

OTHER_WRITERS_SQL = """
with
foreign_groups as (
    select g.id, g.type, g.name
    from {groups} as g
    where
        g.environment = {environment}
        and not exists (select 1 from {ledger_groups} as l where l.group_id = g.id)
),
foreign_memberships as (
    select m.id, g.type, g.name, m.symbol
    from {memberships} as m
    inner join {groups} as g on m.group_id = g.id
    where
        g.environment = {environment}
        and not exists (select 1 from {ledger_memberships} as lm where lm.membership_id = m.id)
)
select
    (select count(*) from foreign_groups) as groups,
    (select count(*) from foreign_memberships) as memberships,
    array(
        select 'group ' || type || ' ' || name || ' (id ' || id || ')'
        from foreign_groups order by id limit 3
    ) as group_examples,
    array(
        select 'member ' || symbol || ' of ' || type || ' ' || name || ' (id ' || id || ')'
        from foreign_memberships order by id limit 3
    ) as membership_examples
"""


@dataclass(frozen=True)
class OtherWriters:
    """Rows of the environment that the migration did not write: kept, never validated."""

    groups: int
    memberships: int
    examples: tuple[str, ...]

    def summary(self) -> str:
        if not (self.groups or self.memberships):
            return "Other writers: none (every row of the environment is the migration's)."
        shown = "; ".join(self.examples)
        return (
            f"Other writers: {self.groups:,} groups and {self.memberships:,} memberships of the "
            f"environment are not the migration's (kept as written, not counted): {shown}"
        )


def other_writers(
    conn: psycopg.Connection[Any], relations: Relations, environment: str
) -> OtherWriters:
    """What other writers hold in the environment: counts and a few examples."""
    statement = sql.SQL(OTHER_WRITERS_SQL).format(
        **_names(relations), environment=sql.Placeholder("environment")
    )
    row = conn.execute(statement, {"environment": environment}).fetchone()
    assert row is not None
    groups, memberships, group_examples, membership_examples = row
    return OtherWriters(
        int(groups), int(memberships), tuple(group_examples) + tuple(membership_examples)
    )
