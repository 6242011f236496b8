{%- set environment = migration_environment() -%}

with

definition_groups as (

    select * from {{ ref('definition_groups') }}
    where environment = '{{ environment }}'

),

group_memberships as (

    select * from {{ ref('group_memberships') }}

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
