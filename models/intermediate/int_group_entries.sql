{#-
    One row per cache entry of a mapped type in this run's environment, with the group it
    would become and, when it cannot become one, why (entry_problem).  The checks run in a
    fixed order so an entry gets exactly one reason:
      superseded_entry → invalid_name → name_too_long → unknown_shape → name_collision.
    Rebuilt every run from int_group_entry_contents, without the member lists: the checks
    compare entries with each other, and the entries' cheap columns are all they need.
-#}

with

group_entry_contents as (

    -- named, not select *: checked_entries is read twice, so PostgreSQL materialises it with
    -- every column it carries, and the member lists must not be among them
    select
        cache_entry_id,
        source_row_version,
        cache_type,
        entry_key,
        entry_name,
        environment,
        raw_environment,
        is_environment_respelled,
        source_updated_at,
        group_type,
        group_name,
        group_description,
        member_source,
        member_list_path,
        member_list_length,
        entry_value_without_members,
        content_checksum,
        member_list_checksum,
        entry_value_json_type
    from {{ ref('int_group_entry_contents') }}

),

ranked_versions as (

    select
        *,
        row_number() over (
            partition by cache_type, entry_key
            order by source_updated_at desc nulls last, cache_entry_id desc
        ) as version_rank

    from group_entry_contents

),

checked_entries as (

    select
        *,
        case
            when version_rank > 1 then 'superseded_entry'
            when btrim(entry_key) = '' then 'invalid_name'
            when char_length(group_name) > 100 then 'name_too_long'
            when member_list_path is null then 'unknown_shape'
        end as own_problem

    from ranked_versions

),

name_claims as (

    select
        cache_entry_id,
        row_number() over (
            partition by group_type, group_name
            order by (group_name = entry_key) desc, cache_type, entry_key asc
        ) as name_claim_rank

    from checked_entries
    where own_problem is null

),

resolved_entries as (

    select
        checked_entries.*,
        coalesce(
            checked_entries.own_problem,
            case when name_claims.name_claim_rank > 1 then 'name_collision' end
        ) as entry_problem

    from checked_entries
    left join name_claims
        on checked_entries.cache_entry_id = name_claims.cache_entry_id

),

final as (

    select
        cache_entry_id,
        source_row_version,
        cache_type,
        entry_key,
        entry_name,
        environment,
        raw_environment,
        is_environment_respelled,
        source_updated_at,
        group_type,
        group_name,
        group_description,
        member_source,
        member_list_path,
        member_list_length,
        entry_value_without_members,
        content_checksum,
        member_list_checksum,
        entry_value_json_type,
        entry_problem,
        entry_problem is null as is_published

    from resolved_entries

)

select * from final
