{#-
    One row per migrated group: its members packed in their source order (position, then
    symbol), with their weights and positions as parallel arrays, so that "ETF X's holdings,
    in order" is one index probe and one row, as it was in the JSONB cache.  An incremental
    run recomputes the groups the change log names (a membership's change names its group).
-#}
{{
    config(
        pre_hook="{{ replace_environment_rows('group_id in (' ~ changed_group_ids_sql() ~ ')') }}",
    )
}}
{%- set environment = migration_environment() -%}
{%- set rebuild = analytics_rebuilds_environment() -%}

with

ledger_groups as (

    select group_id from {{ ref('stg_migration_state__ledger_groups') }}
    where environment = '{{ environment }}'

),

ledger_memberships as (

    select membership_id from {{ ref('stg_migration_state__ledger_memberships') }}

),

environment_groups as (

    -- the migration's groups (its ledger): another writer's rows stay in the two tables
    select * from {{ ref('definition_groups') }}
    where
        environment = '{{ environment }}'
        and id in (select ledger_groups.group_id from ledger_groups)

),

definition_groups as (

    -- the groups to pack: all on a rebuild, else those changed since the last run
    select * from environment_groups
    {%- if not rebuild %}
    where id in ({{ changed_group_ids_sql() }})
    {%- endif %}

),

group_memberships as (

    select * from {{ ref('group_memberships') }}
    where
        group_id in (select definition_groups.id from definition_groups)
        and id in (select ledger_memberships.membership_id from ledger_memberships)

),

positioned_memberships as (

    select
        group_id,
        symbol,
        weight,
        -- the migration always writes a number; anything else would sort last, not fail
        case
            when jsonb_typeof(metadata -> 'position') = 'number'
                then (metadata ->> 'position')::numeric
        end as source_position
    from group_memberships

),

packed_members as (

    select
        group_id,
        count(*) as member_count,
        array_agg(symbol order by source_position nulls last, symbol) as symbols,
        -- NULL for an unweighted list (the source gives no weight): nothing to read
        case
            when count(weight) > 0
                then array_agg(weight order by source_position nulls last, symbol)
        end as weights,
        array_agg(source_position::integer order by source_position nulls last, symbol)
            as positions
    from positioned_memberships
    group by group_id

),

final as (

    select
        definition_groups.id as group_id,
        definition_groups.environment,
        definition_groups.type,
        definition_groups.name,
        coalesce(packed_members.member_count, 0) as member_count,
        coalesce(packed_members.symbols, '{}') as symbols,
        packed_members.weights,
        coalesce(packed_members.positions, '{}') as positions

    from definition_groups
    left join packed_members
        on definition_groups.id = packed_members.group_id

)

select * from final
