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

    -- the groups to summarise: all on a rebuild, else those changed since the last run
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

member_counts as (

    select
        group_id,
        count(*) as member_count,
        count(weight) as weighted_member_count,
        sum(weight) as total_weight
    from group_memberships
    group by group_id

),

final as (

    select
        definition_groups.id as group_id,
        definition_groups.environment,
        definition_groups.type,
        definition_groups.name,
        definition_groups.description,
        coalesce(member_counts.member_count, 0) as member_count,
        coalesce(member_counts.weighted_member_count, 0) as weighted_member_count,
        case
            when coalesce(member_counts.member_count, 0) > 0
                then round(member_counts.weighted_member_count::numeric / member_counts.member_count, 4)
        end as weight_coverage,
        member_counts.total_weight,
        definition_groups.last_update,
        definition_groups.created_at,
        definition_groups.updated_at,
        definition_groups.metadata -> 'source' ->> 'type' as source_type,
        definition_groups.metadata -> 'source' ->> 'key' as source_key,
        definition_groups.metadata -> 'source' ->> 'name' as source_name

    from definition_groups
    left join member_counts
        on definition_groups.id = member_counts.group_id

)

select * from final
