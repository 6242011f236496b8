"""Shadow reads (docs/design.md §13): the application's read forms replayed against the legacy
JSON and against the new tables, every difference reported with its entry and the reason.

The read forms, each one set-based statement for all entries (or a sample of them):

- ``etf`` (an ETF's holdings), ``theme`` (a theme's symbols), ``universe`` (a stock or ETF
  universe's list, looked up as the application does: the CUSTOM group named by the key, with
  ``etf_`` in front for an ETF universe): the legacy entry's members, read as the migration
  reads them (docs/design.md §2), in order with their weights, against the members of the
  group the application would read by ``(type, name, environment)``, in metadata.position
  order, every row of it (another writer's too);
- ``sector`` (a sector's members): the stocks whose stock_metadata names the sector, against
  the SECTOR group's members;
- ``symbol`` (a symbol's groups): the same comparisons, grouped by symbol;
- ``compat``: the compatibility relation's values against the legacy values (the round trip,
  validation/validate_compat.py).

A difference is *explained* when the migration recorded why (a row of migration_exceptions
for the entry or the element: an entry or element left out, a duplicate, an unusable weight)
or when the row is another writer's (not in the migration's ledger, §10); otherwise it is
*unexplained*.  Exit codes: 0 no unexplained difference, 1 at least one, 2 an error (the
tables or the cache not found, the database refused), 4 a missing privilege.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from validation import targets
from validation.timings import Relation
from validation.validate_compat import COMPAT_ROUND_TRIP_SQL, compat_relation, legacy_rules

FORMS = ("etf", "theme", "universe", "sector", "symbol", "compat")

# The legacy lists against the groups the application reads them from.  Parameters:
# environment, sample (NULL: every entry).  One row per difference.
LIST_FORMS_SQL = """
with cache as (
    select c.*, {cache_type_of_c} as cache_type
    from {cache} as c
    where {environment_of_c} = %(environment)s
),
entries as (
    select
        c.id as cache_entry_id, c.cache_type, c.key, c.value, m.member_source,
        case m.group_type when 'ETF' then 'etf' when 'THEME' then 'theme' else 'universe' end
            as form,
        m.group_type,
        {group_name_of_c} as group_name
    from cache as c
    inner join {mappings} as m on c.cache_type = m.cache_type
    where
        m.member_source <> 'stock_metadata'
        and (
            %(sample)s::integer is null
            or c.id in (
                select s.id from cache as s
                where s.cache_type = c.cache_type
                order by md5(s.key), s.id
                limit %(sample)s::integer
            )
        )
),
entry_problems as (
    select x.cache_entry_id, string_agg(x.reason, ', ' order by x.reason) as reasons
    from {exceptions} as x
    where x.element_position is null and x.severity = 'error'
    group by x.cache_entry_id
),
element_problems as (
    select
        x.cache_entry_id, x.element_position,
        string_agg(x.reason, ', ' order by x.reason) filter (where x.severity = 'error')
            as errors,
        string_agg(x.reason, ', ' order by x.reason) filter (where x.severity = 'warning')
            as warnings
    from {exceptions} as x
    where x.element_position is not null
    group by x.cache_entry_id, x.element_position
),
read_entries as (
    select e.* from entries as e
    where not exists (select 1 from entry_problems as p where p.cache_entry_id = e.cache_entry_id)
),
legacy_elements as (
    select
        e.cache_entry_id, e.form, e.cache_type, e.key, e.group_type, e.group_name,
        listed.element_position, listed.element
    from read_entries as e
    cross join lateral {elements_of_e} as listed
),
legacy_members as (
    select
        l.*,
        {symbol_of_l} as symbol,
        {weight_of_l} as weight,
        p.errors, p.warnings
    from legacy_elements as l
    left join element_problems as p
        on p.cache_entry_id = l.cache_entry_id and p.element_position = l.element_position
),
read_groups as (
    select g.id, g.type, g.name, e.cache_entry_id, e.form, e.cache_type, e.key
    from {groups} as g
    inner join read_entries as e on g.type = e.group_type and g.name = e.group_name
    where g.environment = %(environment)s
),
table_members as (
    select
        g.cache_entry_id, g.form, g.cache_type, g.key, g.type, g.name, m.symbol, m.weight,
        case when jsonb_typeof(m.metadata -> 'position') = 'number'
            then (m.metadata ->> 'position')::numeric end as member_position,
        not exists (
            select 1 from {ledger_memberships} as lm where lm.membership_id = m.id
        ) as is_foreign
    from read_groups as g
    inner join {memberships} as m on m.group_id = g.id
),
compared as (
    select
        coalesce(l.form, t.form) as form,
        coalesce(l.cache_type, t.cache_type) as cache_type,
        coalesce(l.key, t.key) as entry_key,
        coalesce(l.group_type, t.type) as group_type,
        coalesce(l.group_name, t.name) as group_name,
        coalesce(l.symbol, t.symbol) as symbol,
        l.element_position,
        case
            when l.cache_entry_id is not null and l.errors is not null
                then 'explained'
            when t.cache_entry_id is null then 'unexplained'
            when l.cache_entry_id is null and t.is_foreign then 'explained'
            when l.cache_entry_id is null then 'unexplained'
            when t.is_foreign then 'same'
            when l.weight is distinct from t.weight and l.warnings like '%%invalid_weight%%'
                then 'explained'
            when l.weight is distinct from t.weight then 'unexplained'
            when t.member_position is distinct from l.element_position then 'unexplained'
            else 'same'
        end as verdict,
        case
            when l.cache_entry_id is not null and l.errors is not null
                then 'element ' || l.element_position || ' left out, recorded as ' || l.errors
            when t.cache_entry_id is null
                then 'element ' || l.element_position || ' (' || coalesce(l.symbol, '?')
                    || ') is in the legacy value but not in the group''s memberships, and no '
                    || 'exception records why'
            when l.cache_entry_id is null and t.is_foreign
                then 'another writer''s membership (not in the migration''s ledger)'
            when l.cache_entry_id is null
                then 'a membership of the migration''s the legacy value does not list'
            when l.weight is distinct from t.weight
                then 'weight ' || coalesce(t.weight::text, 'NULL') || ' in the table, '
                    || coalesce(l.weight::text, 'NULL') || ' in the legacy value'
                    || case when l.warnings is not null
                        then ' (recorded as ' || l.warnings || ')' else '' end
            when t.member_position is distinct from l.element_position
                then 'position ' || coalesce(t.member_position::text, 'NULL')
                    || ' in the table, ' || l.element_position || ' in the legacy value'
        end as reason
    from legacy_members as l
    full join table_members as t
        on l.cache_entry_id = t.cache_entry_id and l.symbol = t.symbol
)
select form, cache_type, entry_key, group_type, group_name, symbol, element_position, verdict,
       reason
from compared
where verdict <> 'same'
union all
select e.form, e.cache_type, e.key, e.group_type, e.group_name, null, null, 'explained',
       'entry left out, recorded as ' || p.reasons
from entries as e
inner join entry_problems as p on p.cache_entry_id = e.cache_entry_id
order by 1, 3, 7 nulls first, 6
"""

# A sector's members: the stocks whose stock_metadata names it, against the SECTOR group.
SECTOR_FORM_SQL = """
with cache as (
    select c.*, {cache_type_of_c} as cache_type
    from {cache} as c
    where {environment_of_c} = %(environment)s
),
sectors as (
    select c.id as cache_entry_id, c.key, c.name
    from cache as c
    where
        c.cache_type in (
            select m.cache_type from {mappings} as m where m.member_source = 'stock_metadata'
        )
        and not exists (
            select 1 from {exceptions} as x
            where x.cache_entry_id = c.id and x.element_position is null and x.severity = 'error'
        )
        and (
            %(sample)s::integer is null
            or c.id in (
                select s.id from cache as s where s.cache_type = c.cache_type
                order by md5(s.key), s.id limit %(sample)s::integer
            )
        )
),
stocks as (
    select
        c.id as cache_entry_id,
        {symbol_of_c_key} as symbol,
        nullif(btrim({sector_of_c}), '') as sector_label
    from cache as c
    where c.cache_type = 'stock_metadata'
),
legacy_members as (
    select distinct on (st.cache_entry_id)
        st.cache_entry_id, st.symbol, se.key as sector_key,
        (
            select string_agg(x.reason, ', ' order by x.reason) from {exceptions} as x
            where x.cache_entry_id = st.cache_entry_id and x.severity = 'error'
        ) as errors
    from stocks as st
    inner join sectors as se
        on {sector_label_matches}
    order by st.cache_entry_id, {sector_match_order}
),
table_members as (
    select se.key as sector_key, m.symbol,
        not exists (
            select 1 from {ledger_memberships} as lm where lm.membership_id = m.id
        ) as is_foreign
    from sectors as se
    inner join {groups} as g
        on g.type = 'SECTOR' and g.name = se.key and g.environment = %(environment)s
    inner join {memberships} as m on m.group_id = g.id
),
compared as (
    select
        coalesce(l.sector_key, t.sector_key) as sector_key,
        coalesce(l.symbol, t.symbol) as symbol,
        case
            when l.symbol is not null and l.errors is not null then 'explained'
            when t.symbol is null then 'unexplained'
            when l.symbol is null and t.is_foreign then 'explained'
            when l.symbol is null then 'unexplained'
            else 'same'
        end as verdict,
        case
            when l.symbol is not null and l.errors is not null
                then 'stock_metadata entry ' || l.cache_entry_id || ' left out, recorded as '
                    || l.errors
            when t.symbol is null
                then 'its stock_metadata names the sector, but the SECTOR group does not hold '
                    || 'it and no exception records why'
            when l.symbol is null and t.is_foreign
                then 'another writer''s membership (not in the migration''s ledger)'
            when l.symbol is null
                then 'a membership of the migration''s that no stock_metadata entry names'
        end as reason
    from legacy_members as l
    full join table_members as t on l.sector_key = t.sector_key and l.symbol = t.symbol
)
select 'sector', 'sector_industry_map', sector_key, 'SECTOR', sector_key, symbol,
       null::integer, verdict, reason
from compared
where verdict <> 'same'
order by 3, 6
"""


@dataclass(frozen=True)
class Difference:
    """One difference between a legacy read and the same read of the new tables."""

    form: str
    cache_type: str
    entry_key: str
    group: str
    symbol: str | None
    position: int | None
    explained: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "cache_type": self.cache_type,
            "entry_key": self.entry_key,
            "group": self.group,
            "symbol": self.symbol,
            "position": self.position,
            "explained": self.explained,
            "reason": self.reason,
        }


@dataclass
class ShadowReport:
    """What the shadow reads compared, and every difference found."""

    environment: str
    sample: int | None
    differences: list[Difference] = field(default_factory=list)
    compared: dict[str, int] = field(default_factory=dict)

    @property
    def unexplained(self) -> list[Difference]:
        return [d for d in self.differences if not d.explained]

    @property
    def exit_code(self) -> int:
        return 1 if self.unexplained else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "sample": self.sample,
            "compared": self.compared,
            "explained": len(self.differences) - len(self.unexplained),
            "unexplained": len(self.unexplained),
            "differences": [d.as_dict() for d in self.differences],
            "exit_code": self.exit_code,
        }

    def lines(self, limit: int = 50) -> list[str]:
        counts = Counter((d.form, d.explained) for d in self.differences)
        scope = f"a sample of {self.sample} per type" if self.sample else "every entry"
        out = [f"Shadow reads of {self.environment} ({scope}):"]
        for form in FORMS:
            out.append(
                f"  {form:<9} {self.compared.get(form, 0):>7,} compared, "
                f"{counts[(form, True)]:,} explained, {counts[(form, False)]:,} unexplained"
            )
        for difference in self.unexplained[:limit]:
            out.append(f"  UNEXPLAINED {describe(difference)}")
        if len(self.unexplained) > limit:
            out.append(f"  … and {len(self.unexplained) - limit:,} more (--json lists them all)")
        return out


def describe(d: Difference) -> str:
    where = f"{d.form}: {d.cache_type} {d.entry_key!r} (group {d.group})"
    if d.symbol is not None:
        where += f" symbol {d.symbol}"
    return f"{where}: {d.reason}"


def _names(tables: targets.Tables) -> dict[str, sql.Composable]:
    schema = tables.groups.schema
    return {
        "cache": sql.Identifier(tables.cache.schema, tables.cache.name),
        "groups": sql.Identifier(schema, tables.groups.name),
        "memberships": sql.Identifier(tables.memberships.schema, tables.memberships.name),
        "exceptions": sql.Identifier(tables.exceptions.schema, tables.exceptions.name),
        "ledger_memberships": sql.Identifier(schema, "migration_ledger_memberships"),
        **legacy_rules(),
        **_shadow_rules(),
    }


def _shadow_rules() -> dict[str, sql.Composable]:
    """The project's rules (validation/targets.py, rule) over this module's aliases."""

    def column(alias: str, name: str) -> sql.Composable:
        return sql.Identifier(alias, name)

    return {
        "group_name_of_c": targets.rule(
            "group_name_of", column("c", "key"), column("m", "name_prefix")
        ),
        "elements_of_e": targets.rule(
            "member_list_elements", column("e", "value"), column("e", "member_source")
        ),
        "symbol_of_l": targets.read_as(
            "folded_symbol", targets.rule("element_symbol_text", column("l", "element"))
        ),
        "weight_of_l": targets.rule("element_weight", column("l", "element")),
        "symbol_of_c_key": targets.read_as("folded_symbol", column("c", "key")),
        "sector_of_c": targets.rule("json_text_at", column("c", "value"), sql.SQL("sector")),
        "sector_label_matches": targets.rule(
            "sector_label_matches",
            column("st", "sector_label"), column("se", "key"), column("se", "name"),
        ),
        "sector_match_order": targets.rule(
            "sector_match_order", column("st", "sector_label"), column("se", "key")
        ),
    }  # fmt: skip


def compat_of(tables: targets.Tables, database: str) -> Relation:
    return compat_relation(database, tables.groups.schema, tables.target)


def run_shadow(
    conn: psycopg.Connection[Any], tables: targets.Tables, *, sample: int | None = None
) -> ShadowReport:
    """Every read form against the legacy cache and the new tables (see the module's text)."""
    environment = targets.environment_for(tables.target)
    report = ShadowReport(environment, sample)
    names = _names(tables)
    params = {"environment": environment, "sample": sample}
    for statement in (LIST_FORMS_SQL, SECTOR_FORM_SQL):
        for row in conn.execute(sql.SQL(statement).format(**names), params).fetchall():
            form, cache_type, key, group_type, group_name, symbol, position, verdict, why = row
            report.differences.append(
                Difference(
                    form,
                    cache_type,
                    key,
                    f"{group_type} {group_name}",
                    symbol,
                    position,
                    verdict == "explained",
                    why,
                )
            )
    report.compared.update(_counts(conn, names, params))
    compat = compat_of(tables, conn.info.dbname)
    round_trip = sql.SQL(COMPAT_ROUND_TRIP_SQL).format(
        batch=compat.identifier(),
        environment=sql.Placeholder("environment"),
        **names,
    )
    for cache_type, key, mismatch in conn.execute(round_trip, params).fetchall():
        report.differences.append(
            Difference("compat", cache_type, key, str(compat), None, None, False, mismatch)
        )
    compat_rows = conn.execute(
        sql.SQL("select count(*) from {} where migration_status <> 'not_migrated'").format(
            compat.identifier()
        )
    ).fetchone()
    report.compared["compat"] = compat_rows[0] if compat_rows else 0
    # a symbol's groups: the same differences, by symbol
    by_symbol = [
        Difference("symbol", d.cache_type, d.entry_key, d.group, d.symbol, d.position,
                   d.explained, f"in {d.group}: {d.reason}")
        for d in report.differences
        if d.symbol is not None and d.form != "compat"
    ]  # fmt: skip
    report.compared["symbol"] = _symbol_count(conn, names, environment)
    report.differences.extend(by_symbol)
    return report


_COUNTS_SQL = """
select
    case m.group_type
        when 'ETF' then 'etf' when 'THEME' then 'theme' when 'SECTOR' then 'sector'
        else 'universe'
    end,
    count(*)
from {cache} as c
inner join {mappings} as m on {cache_type_of_c} = m.cache_type
where {environment_of_c} = %(environment)s
group by 1
"""


def _counts(
    conn: psycopg.Connection[Any], names: dict[str, sql.Composable], params: dict[str, Any]
) -> dict[str, int]:
    rows = conn.execute(sql.SQL(_COUNTS_SQL).format(**names), params).fetchall()
    sample = params["sample"]
    return {form: min(count, sample) if sample else count for form, count in rows}


def _symbol_count(
    conn: psycopg.Connection[Any], names: dict[str, sql.Composable], environment: str
) -> int:
    row = conn.execute(
        sql.SQL(
            "select count(distinct m.symbol) from {memberships} as m"
            " inner join {groups} as g on g.id = m.group_id where g.environment = %s"
        ).format(**names),
        (environment,),
    ).fetchone()
    return row[0] if row else 0
