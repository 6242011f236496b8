{#-
    One row per cache entry of a mapped type in this run's environment, with the group it
    would become and, when it cannot become one, why (entry_problem).  The checks run in a
    fixed order so an entry gets exactly one reason:
      superseded_entry → invalid_name → name_too_long → unknown_shape → name_collision.
-#}
{%- set environment = migration_environment() -%}

with

cache_entries as (

    select * from {{ ref('stg_legacy__cache_entries') }}
    where
        {{ in_run_environment() }}
        -- an array, not a join: lets the planner read only the mapped types by index
        and cache_type = any(
            array(select mappings.cache_type from {{ ref('cache_type_mappings') }} as mappings)
        )

),

cache_type_mappings as (

    select * from {{ ref('cache_type_mappings') }}

),

mapped_entries as (

    select
        cache_entries.cache_entry_id,
        cache_entries.cache_type,
        cache_entries.entry_key,
        cache_entries.entry_name,
        cache_entries.entry_value,
        cache_entries.entry_value_json_type,
        cache_entries.environment,
        cache_entries.raw_environment,
        cache_entries.is_environment_respelled,
        cache_entries.source_updated_at,
        cache_entries.content_checksum,
        cache_type_mappings.group_type,
        cache_type_mappings.member_source,
        case
            when coalesce(cache_type_mappings.name_prefix, '') = '' then cache_entries.entry_key
            when starts_with(cache_entries.entry_key, cache_type_mappings.name_prefix)
                then cache_entries.entry_key
            else cache_type_mappings.name_prefix || cache_entries.entry_key
        end as group_name,
        case cache_type_mappings.description_source
            when 'entry_name' then cache_entries.entry_name
            when 'value_description'
                then {{ json_text_at('cache_entries.entry_value', 'description') }}
        end as group_description

    from cache_entries
    inner join cache_type_mappings
        on cache_entries.cache_type = cache_type_mappings.cache_type

),

entries_with_member_lists as (

    select
        *,
        case member_source
            when
                'holdings'
                then case when jsonb_typeof(entry_value -> 'holdings') = 'array' then 'holdings' end
            when 'symbols' then case when jsonb_typeof(entry_value -> 'symbols') = 'array' then 'symbols' end
            when 'universe'
                then case
                    when entry_value_json_type = 'array' then '(value)'
                    when jsonb_typeof(entry_value -> 'symbols') = 'array' then 'symbols'
                    when jsonb_typeof(entry_value -> 'stocks') = 'array' then 'stocks'
                    when jsonb_typeof(entry_value -> 'etfs') = 'array' then 'etfs'
                end
            when 'stock_metadata' then case when entry_value_json_type = 'object' then '(stock_metadata)' end
        end as member_list_path

    from mapped_entries

),

ranked_versions as (

    select
        *,
        row_number() over (
            partition by cache_type, entry_key
            order by source_updated_at desc nulls last, cache_entry_id desc
        ) as version_rank

    from entries_with_member_lists

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
        case member_list_path
            when '(value)' then entry_value
            when '(stock_metadata)' then null
            else entry_value -> member_list_path
        end as member_list,
        case
            when member_list_path = '(value)' then jsonb_array_length(entry_value)
            when member_list_path in ('holdings', 'symbols', 'stocks', 'etfs')
                then jsonb_array_length(entry_value -> member_list_path)
        end as member_list_length,
        case
            when entry_value_json_type <> 'object' then '{}'::jsonb
            when member_list_path in ('holdings', 'symbols', 'stocks', 'etfs')
                then entry_value - member_list_path
            else entry_value
        end as entry_value_without_members,
        content_checksum,
        md5(concat_ws('|', cache_type, entry_key, group_type, member_list_path, content_checksum))
            as member_list_checksum,
        entry_value_json_type,
        entry_problem,
        entry_problem is null as is_published

    from resolved_entries

)

select * from final
