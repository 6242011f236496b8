"""The round trip, as the suite checks it (docs/design.md §13): the compatibility relation
``<schema>_compat_<env>.cache_entries`` against the legacy cache, read by the project's own
rules (legacy_rules: its macros and seed, rendered).  For every entry of the environment that
the migration did not leave out as a whole, its row's value minus its member lists equals the
legacy value's, and its members, each read as the migration reads an element ([symbol,
weight, other keys]), in order, equal the legacy elements minus exactly the positions
migration_exceptions records as errors (and an element another writer's row of the group
stands for, §10); every entry left out as a whole is listed.  Validated as its own batch
({batch}: the compatibility relation).
"""

from __future__ import annotations

from psycopg import sql

from validation import targets
from validation.timings import Relation

COMPAT_SCHEMA_SUFFIX = "compat"
COMPAT_NAME = "cache_entries"


def compat_relation(database: str, schema: str, target: str) -> Relation:
    """Where a build of ``target`` puts the compatibility relation: <schema>_compat_<env>."""
    return Relation(database, f"{schema}_{COMPAT_SCHEMA_SUFFIX}_{target.lower()}", COMPAT_NAME)


# Every rule is the project's own, rendered from its macros and seed (legacy_rules below): the
# environment and the type of a row, the places of each type's member lists (seed
# cache_type_mappings), the expansion of a value into its elements and the reading of one.
COMPAT_ROUND_TRIP_SQL = """
with compat_rows as (select * from {batch} as compat),
cache as (
    select c.*, {cache_type_of_c} as cache_type
    from {cache} as c
    where {environment_of_c} = {environment}
),
legacy_entries as (
    select c.id as cache_entry_id, c.cache_type, c.key, c.value, m.member_source
    from cache as c
    inner join {mappings} as m on c.cache_type = m.cache_type
    where
        not exists (
            select 1 from {exceptions} as x
            where x.cache_entry_id = c.id and x.severity = 'error' and x.element_position is null
        )
),
pairs as (
    select l.*, r.value as compat_value, r.group_id
    from legacy_entries as l
    inner join compat_rows as r
        on r.type = l.cache_type and r.key = l.key and r.migration_status <> 'not_migrated'
),
elements as (
    select 'legacy' as side, p.cache_entry_id, p.group_id, listed.element_position, listed.element
    from pairs as p
    cross join lateral {legacy_elements_of_p} as listed
    union all
    select 'compat' as side, p.cache_entry_id, p.group_id, listed.element_position, listed.element
    from pairs as p
    cross join lateral {compat_elements_of_p} as listed
),
readings as (
    select e.side, e.cache_entry_id, e.group_id, e.element_position, {reading_of_e} as reading
    from elements as e
),
error_positions as materialized (
    select x.cache_entry_id, x.element_position
    from {exceptions} as x
    where x.severity = 'error' and x.element_position is not null
),
foreign_members as materialized (
    -- another writer's rows in the migration's groups: read once, not per element (a
    -- missing index must not make this quadratic)
    select m.group_id, m.symbol
    from {memberships} as m
    where
        m.group_id in (select p.group_id from pairs as p)
        and not exists (
            select 1 from {ledger_memberships} as lm where lm.membership_id = m.id
        )
),
kept as (
    select r.*
    from readings as r
    where
        r.side = 'compat'
        or (
            not exists (
                select 1 from error_positions as x
                where
                    x.cache_entry_id = r.cache_entry_id
                    and x.element_position = r.element_position
            )
            and not exists (
                select 1 from foreign_members as f
                where f.group_id = r.group_id and f.symbol = r.reading ->> 0
            )
        )
),
member_lists as (
    select
        k.cache_entry_id,
        jsonb_agg(k.reading order by k.element_position) filter (where k.side = 'legacy')
            as legacy_members,
        jsonb_agg(k.reading order by k.element_position) filter (where k.side = 'compat')
            as compat_members
    from kept as k
    group by k.cache_entry_id
),
members as (
    select
        p.cache_entry_id, p.cache_type, p.key,
        {legacy_rest_of_p} as legacy_rest,
        {compat_rest_of_p} as compat_rest,
        coalesce(l.legacy_members, '[]'::jsonb) as legacy_members,
        coalesce(l.compat_members, '[]'::jsonb) as compat_members
    from pairs as p
    left join member_lists as l on p.cache_entry_id = l.cache_entry_id
)
select cache_type, key, 'the value without its member lists differs' as mismatch
from members where legacy_rest is distinct from compat_rest
union all
select d.cache_type, d.key,
    'member ' || (d.first_difference + 1) || ': '
    || coalesce(left((d.compat_members -> d.first_difference)::text, 200), 'none')
    || ' in the compatibility value, '
    || coalesce(left((d.legacy_members -> d.first_difference)::text, 200), 'none')
    || ' in the legacy lists minus their recorded errors ('
    || jsonb_array_length(d.compat_members) || ' and ' || jsonb_array_length(d.legacy_members)
    || ' members; each [symbol, weight, other keys])'
from (
    select
        m.*,
        (
            select min(i) from generate_series(
                0, greatest(jsonb_array_length(m.legacy_members),
                            jsonb_array_length(m.compat_members)) - 1
            ) as i
            where (m.legacy_members -> i) is distinct from (m.compat_members -> i)
        ) as first_difference
    from members as m
    where m.legacy_rest = m.compat_rest and m.legacy_members is distinct from m.compat_members
) as d
union all
select l.cache_type, l.key, 'no row in the compatibility relation'
from legacy_entries as l
where not exists (select 1 from pairs as p where p.cache_entry_id = l.cache_entry_id)
union all
select x.cache_type, x.entry_key, 'left out as ' || x.reason || ', but not listed as not_migrated'
from {exceptions} as x
where
    x.element_position is null and x.severity = 'error'
    and x.cache_type in (select m.cache_type from {mappings} as m)
    and not exists (
        select 1 from compat_rows as r
        where
            r.migration_status = 'not_migrated' and r.type = x.cache_type
            and r.key = x.entry_key and r.environment = x.raw_environment
    )
order by 1, 2
"""


def legacy_rules() -> dict[str, sql.Composable]:
    """The project's reading rules as the harness's statements name them (``<rule>_of_<alias>``),
    rendered from its macros and seed (validation/targets.py): the round trip and the shadow
    reads read the cache exactly as a build does."""

    def column(alias: str, name: str) -> sql.Composable:
        return sql.Identifier(alias, name)

    member_source = column("p", "member_source")
    return {
        "environment_of_c": targets.environment_of(column("c", "environment")),
        "cache_type_of_c": targets.read_as("normalised_cache_type", column("c", "type")),
        "mappings": targets.type_mappings(),
        "legacy_elements_of_p": targets.rule(
            "member_list_elements", column("p", "value"), member_source
        ),
        "compat_elements_of_p": targets.rule(
            "member_list_elements", column("p", "compat_value"), member_source
        ),
        "reading_of_e": targets.rule("member_element_reading", column("e", "element")),
        "legacy_rest_of_p": targets.rule(
            "value_without_member_lists", column("p", "value"), member_source
        ),
        "compat_rest_of_p": targets.rule(
            "value_without_member_lists", column("p", "compat_value"), member_source
        ),
    }
