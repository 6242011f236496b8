{{
    config(
        pre_hook="{{ replace_environment_rows('symbol = any(array(' ~ changed_symbols_sql() ~ '))') }}",
    )
}}
{%- set environment = migration_environment() -%}
{%- set rebuild = analytics_rebuilds_environment() -%}

with

definition_groups as (

    select * from {{ ref('definition_groups') }}
    where environment = '{{ environment }}'

),

ledger_memberships as (

    select membership_id from {{ ref('stg_migration_state__ledger_memberships') }}

),

group_memberships as (

    -- the migration's memberships (its ledger): another writer's rows stay in the two tables
    select * from {{ ref('group_memberships') }}
    where
        id in (select ledger_memberships.membership_id from ledger_memberships)
    {%- if not rebuild %}
        -- an array, not a join: the planner then reads the few changed symbols by index
        and symbol = any(array({{ changed_symbols_sql() }}))
    {%- endif %}

),

memberships as (

    select
        definition_groups.environment,
        group_memberships.symbol,
        definition_groups.type,
        definition_groups.name,
        group_memberships.metadata
    from group_memberships
    inner join definition_groups
        on group_memberships.group_id = definition_groups.id

),

symbols as (

    select
        environment,
        symbol,
        coalesce(array_agg(name order by name) filter (where type = 'ETF'), '{}') as etfs,
        coalesce(array_agg(name order by name) filter (where type = 'THEME'), '{}') as themes,
        min(name) filter (where type = 'SECTOR') as sector,
        min(metadata ->> 'industry') filter (where type = 'SECTOR') as industry,
        coalesce(array_agg(name order by name) filter (where type = 'CUSTOM'), '{}')
            as custom_groups,
        count(*) filter (where type = 'ETF') as etf_count,
        count(*) filter (where type = 'THEME') as theme_count,
        count(*) as group_count
    from memberships
    group by environment, symbol

)

select * from symbols
