-- The benchmark's SQL floor: cache_entries → definition_groups and group_memberships for one
-- environment, written once by hand with the models' rules (environment spelling, type mapping,
-- latest version wins, etf_ prefix, name collisions, member list shapes, symbol normalisation
-- and validity, weights, first occurrence wins, sectors from stock_metadata, provenance and
-- checksum in metadata). It records no exceptions and trusts ISO dates that look valid, which
-- the models do not. validation/bench_floor.py runs it in one transaction and times it.
--
-- How it is run: each statement goes through psycopg's sql.SQL(...).format(...), with {floor}
-- (the floor's schema) and {cache} (the legacy table) as identifiers, {environment_of_e} as the
-- environment of cache row e by the models' own macro (macros/sql_helpers/normalisation.sql),
-- so braces that belong to the SQL are doubled; %(environment)s, %(types)s and %(groups)s are bound parameters. A
-- statement ends with ";" at the end of a line; whole-line comments are dropped before running.

-- A fresh schema for the floor's two tables, with the specification's DDL.
drop schema if exists {floor} cascade;

create schema {floor};

create table {floor}.definition_groups (
    id serial primary key,
    name varchar(100) not null,
    type varchar(50) not null check (type in ('ETF', 'THEME', 'SECTOR', 'SEGMENT', 'CUSTOM')),
    description text,
    metadata jsonb,
    liquidity_filter jsonb,
    environment varchar(10) not null check (environment in {environments}),
    created_at timestamp without time zone default current_timestamp,
    updated_at timestamp without time zone default current_timestamp,
    last_update timestamp without time zone default current_timestamp,
    constraint unique_group unique (name, type, environment)
);

create table {floor}.group_memberships (
    id serial primary key,
    group_id integer not null references {floor}.definition_groups (id) on delete cascade,
    symbol varchar(50) not null,
    weight numeric(5, 4),
    metadata jsonb,
    added_at timestamp without time zone default current_timestamp,
    updated_at timestamp without time zone default current_timestamp,
    constraint unique_membership unique (group_id, symbol)
);

-- The groups to be: one row per surviving entry of the environment (latest version wins, the
-- etf_ prefix, name collisions), with where its member list is.
create temp table floor_entries on commit drop as
with env_entries as (
    select
        e.id as cache_id, e.type as cache_type, e.key, e.name as entry_name, e.value,
        coalesce(e.updated_at, e.created_at) as stamp
    from {cache} as e
    where e.type = any(%(types)s)
      and {environment_of_e} = %(environment)s
),
mapped as (
    select
        *,
        case cache_type
            when 'etf_holdings' then 'ETF' when 'theme_definition' then 'THEME'
            when 'sector_industry_map' then 'SECTOR' else 'CUSTOM'
        end as group_type,
        case
            when cache_type = 'etf_universe' and not starts_with(key, 'etf_')
                then 'etf_' || key
            else key
        end as group_name,
        case
            when cache_type in ('theme_definition', 'sector_industry_map')
                then case when jsonb_typeof(value -> 'description') = 'string'
                    then value ->> 'description' end
            else entry_name
        end as description,
        case
            when cache_type = 'etf_holdings'
                then case when jsonb_typeof(value -> 'holdings') = 'array' then 'holdings' end
            when cache_type = 'theme_definition'
                then case when jsonb_typeof(value -> 'symbols') = 'array' then 'symbols' end
            when cache_type = 'sector_industry_map'
                then case when jsonb_typeof(value) = 'object' then '(sectors)' end
            when jsonb_typeof(value) = 'array' then '(value)'
            when jsonb_typeof(value -> 'symbols') = 'array' then 'symbols'
            when jsonb_typeof(value -> 'stocks') = 'array' then 'stocks'
            when jsonb_typeof(value -> 'etfs') = 'array' then 'etfs'
        end as list_path,
        row_number() over (
            partition by cache_type, key order by stamp desc nulls last, cache_id desc
        ) as version
    from env_entries
    where cache_type <> 'stock_metadata'
),
valid as (
    select * from mapped
    where version = 1 and list_path is not null and btrim(key) <> ''
      and char_length(group_name) <= 100
)
select
    row_number() over (order by group_type, group_name, cache_type, key)::integer as id,
    *
from (
    select
        *,
        row_number() over (
            partition by group_type, group_name
            order by (group_name = key) desc, cache_type, key
        ) as name_rank
    from valid
) as ranked
where name_rank = 1;

-- definition_groups: provenance and checksum in metadata, the threshold as liquidity filter.
insert into {floor}.definition_groups (
    id, name, type, description, metadata, liquidity_filter, environment,
    created_at, updated_at, last_update
)
select
    id, group_name, group_type, description,
    jsonb_build_object('source', jsonb_build_object(
        'type', cache_type, 'key', key, 'name', entry_name, 'checksum', md5(value::text)))
    || case
        when jsonb_typeof(value) <> 'object' then '{{}}'::jsonb
        when list_path in ('holdings', 'symbols', 'stocks', 'etfs') then value - list_path
        else value
    end,
    case when jsonb_typeof(value -> 'market_cap_threshold') = 'number'
        then jsonb_build_object('market_cap_threshold', value -> 'market_cap_threshold')
    end,
    %(environment)s,
    now() at time zone 'UTC', now() at time zone 'UTC',
    case
        when value ->> 'last_updated'
            ~ '^\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}:\d{{2}}:\d{{2}}$'
            then (value ->> 'last_updated')::timestamp
        else stamp at time zone 'UTC'
    end
from floor_entries;

-- The serial continues after the ids given above.
select setval(
    pg_get_serial_sequence(%(groups)s, 'id'),
    (select coalesce(max(id), 0) + 1 from {floor}.definition_groups),
    false
);

-- group_memberships: list members (strings or objects, weights) and sector members from
-- stock_metadata; valid symbols only, the first occurrence wins.
insert into {floor}.group_memberships (group_id, symbol, weight, metadata, added_at, updated_at)
with list_elements as (
    select g.id as group_id, listed.ordinality::integer as position, listed.element
    from floor_entries as g
    cross join lateral jsonb_array_elements(
        case when g.list_path = '(value)' then g.value else g.value -> g.list_path end
    ) with ordinality as listed (element, ordinality)
    where g.list_path <> '(sectors)'
),
list_members as (
    select
        group_id, position,
        upper(btrim(case jsonb_typeof(element)
            when 'string' then element #>> '{{}}'
            when 'object' then coalesce(element ->> 'symbol', element ->> 'ticker')
        end)) as symbol,
        case
            when jsonb_typeof(element -> 'weight') = 'number'
                and (element ->> 'weight')::numeric between 0 and 1
                then round((element ->> 'weight')::numeric, 4)
            when jsonb_typeof(element -> 'weight_pct') = 'number'
                and (element ->> 'weight_pct')::numeric between 0 and 100
                then round((element ->> 'weight_pct')::numeric / 100, 4)
        end as weight,
        jsonb_build_object('position', position)
        || case when jsonb_typeof(element) = 'object'
            then element - 'symbol' - 'ticker' - 'weight' - 'weight_pct'
            else '{{}}'::jsonb end as metadata
    from list_elements
),
stocks as (
    select distinct on (upper(btrim(e.key)))
        upper(btrim(e.key)) as symbol,
        lower(btrim(e.value ->> 'sector')) as sector_label,
        e.value ->> 'industry' as industry
    from {cache} as e
    where e.type = 'stock_metadata'
      and {environment_of_e} = %(environment)s
    order by upper(btrim(e.key)), coalesce(e.updated_at, e.created_at) desc nulls last,
             e.id desc
),
sector_members as (
    select distinct on (s.symbol)
        g.id as group_id, null::integer as position, s.symbol, null::numeric as weight,
        jsonb_strip_nulls(jsonb_build_object('industry', s.industry)) as metadata
    from stocks as s
    join floor_entries as g
        on g.group_type = 'SECTOR'
       and s.sector_label in (
           lower(g.key), lower(g.entry_name), lower(replace(g.key, '_', ' '))
       )
    order by s.symbol, (s.sector_label = lower(g.key)) desc, g.key
),
all_members as (
    select * from list_members
    union all
    select * from sector_members
)
select distinct on (group_id, symbol)
    group_id, symbol, weight, metadata, now() at time zone 'UTC', now() at time zone 'UTC'
from all_members
where symbol ~ '^[A-Z0-9][A-Z0-9.-]{{0,9}}$'
order by group_id, symbol, position nulls last;

-- The models' indexes, and fresh statistics.
create index on {floor}.definition_groups (environment, type);

create index on {floor}.group_memberships (symbol, group_id);

analyze {floor}.definition_groups;

analyze {floor}.group_memberships;
