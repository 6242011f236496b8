"""The round trip, as the suite checks it (docs/design.md §13): the compatibility relation
``<schema>_compat_<env>.cache_entries`` against the legacy cache, in SQL of its own (not the
dbt macros): for every entry of the environment that the migration did not leave out as a
whole, its row's value minus its member lists equals the legacy value's, and its members read
as the migration reads an element (symbol trimmed and upper-cased, weight as a fraction to 4
places, the element's other keys), in order, equal the legacy elements minus exactly the
positions migration_exceptions records as errors (and an element another writer's row of the
group stands for, §10); every entry left out as a whole is listed.  Validated as its own
batch ({batch}: the compatibility relation).
"""

from __future__ import annotations

from validation.timings import Relation

COMPAT_SCHEMA_SUFFIX = "compat"
COMPAT_NAME = "cache_entries"


def compat_relation(database: str, schema: str, target: str) -> Relation:
    """Where a build of ``target`` puts the compatibility relation: <schema>_compat_<env>."""
    return Relation(database, f"{schema}_{COMPAT_SCHEMA_SUFFIX}_{target.lower()}", COMPAT_NAME)


# The places of each type's member lists, in order, are seeds/cache_type_mappings.csv's (a
# sector's value lists no members); '(value)' is a plain array value.
COMPAT_ROUND_TRIP_SQL = """
with compat_rows as (select * from {batch} as compat),
cache as (
    select
        c.*,
        translate(btrim(c.type, E' \\t\\r\\n'), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
                  'abcdefghijklmnopqrstuvwxyz') as cache_type
    from {cache} as c
    where upper(btrim(c.environment, E' \\t\\r\\n')) = {environment}
),
legacy_entries as (
    select c.id as cache_entry_id, c.cache_type, c.key, c.value,
case c.cache_type
    when 'etf_holdings' then array['holdings', 'symbols', 'stocks', 'etfs']
    when 'theme_definition' then array['symbols', 'stocks', 'etfs', 'holdings']
    when 'sector_industry_map' then array[]::text[]
    else array['(value)', 'symbols', 'stocks', 'etfs', 'holdings']
end as places
    from cache as c
    where
        c.cache_type in (
            'etf_holdings', 'theme_definition', 'sector_industry_map', 'stock_universe',
            'etf_universe'
        )
        and not exists (
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
    select
        'legacy' as side, p.cache_entry_id, p.group_id,
        row_number() over (
            partition by p.cache_entry_id order by places.place_order, listed.element_order
        ) as element_position,
        listed.element
    from pairs as p
    cross join lateral unnest(p.places) with ordinality as places (place, place_order)
    cross join lateral jsonb_array_elements(
case
    when places.place = '(value)' and jsonb_typeof(p.value) = 'array' then p.value
    when places.place <> '(value)' and jsonb_typeof(p.value) = 'object'
        and jsonb_typeof(p.value -> places.place) = 'array' then p.value -> places.place
    else '[]'::jsonb
end) with ordinality as listed (element, element_order)
    union all
    select
        'compat' as side, p.cache_entry_id, p.group_id,
        row_number() over (
            partition by p.cache_entry_id order by places.place_order, listed.element_order
        ) as element_position,
        listed.element
    from pairs as p
    cross join lateral unnest(p.places) with ordinality as places (place, place_order)
    cross join lateral jsonb_array_elements(
case
    when places.place = '(value)' and jsonb_typeof(p.compat_value) = 'array' then p.compat_value
    when places.place <> '(value)' and jsonb_typeof(p.compat_value) = 'object'
        and jsonb_typeof(p.compat_value -> places.place) = 'array'
        then p.compat_value -> places.place
    else '[]'::jsonb
end) with ordinality as listed (element, element_order)
),
readings as (
    select
        e.side, e.cache_entry_id, e.group_id, e.element_position,
        jsonb_build_array(
            translate(btrim(case jsonb_typeof(e.element)
                when 'string' then jsonb_build_array(e.element) ->> 0
                when 'object' then coalesce(
                    case when jsonb_typeof(e.element -> 'symbol') = 'string'
                        then e.element ->> 'symbol' end,
                    case when jsonb_typeof(e.element -> 'ticker') = 'string'
                        then e.element ->> 'ticker' end
                )
            end), 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'),
            case
                when jsonb_typeof(e.element) <> 'object' then null
                when e.element ? 'weight' then case
                    when jsonb_typeof(e.element -> 'weight') = 'number'
                        and (e.element ->> 'weight')::numeric between 0 and 1
                        then round((e.element ->> 'weight')::numeric, 4)
                end
                when e.element ? 'weight_pct' then case
                    when jsonb_typeof(e.element -> 'weight_pct') = 'number'
                        and (e.element ->> 'weight_pct')::numeric between 0 and 100
                        then round((e.element ->> 'weight_pct')::numeric / 100, 4)
                end
            end,
            case
                when jsonb_typeof(e.element) = 'object'
                    then e.element - 'symbol' - 'ticker' - 'weight' - 'weight_pct'
                else jsonb_build_object()
            end
        ) as reading
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
        case when jsonb_typeof(p.value) = 'object' then p.value - p.places
            else jsonb_build_object() end as legacy_rest,
        case when jsonb_typeof(p.compat_value) = 'object' then p.compat_value - p.places
            else jsonb_build_object() end as compat_rest,
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
    and x.cache_type in (
        'etf_holdings', 'theme_definition', 'sector_industry_map', 'stock_universe',
        'etf_universe'
    )
    and not exists (
        select 1 from compat_rows as r
        where
            r.migration_status = 'not_migrated' and r.type = x.cache_type
            and r.key = x.entry_key and r.environment = x.raw_environment
    )
order by 1, 2
"""
