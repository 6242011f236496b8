{#-
    The definition_groups rows this run's environment should hold: one per published
    entry, with its provenance and content checksum in metadata.  Identity across runs is
    (environment, type, source_type, source_key) — never the cache row's id.

    A view: its two readers (definition_groups' diff and the exceptions) each read it once,
    and building the metadata of every group costs less than storing and analysing it.
-#}
{{ config(materialized='view') }}

with

published_entries as (

    select * from {{ ref('int_group_entries') }}
    where is_published

),

final as (

    select
        environment,
        group_type as type,
        cache_type as source_type,
        entry_key as source_key,
        group_name as name,
        group_description as description,
        jsonb_build_object(
            'source', jsonb_build_object(
                'type', cache_type,
                'key', entry_key,
                'name', entry_name,
                'checksum', content_checksum
            )
        )
        || (entry_value_without_members - 'source')
        || case
            when entry_value_without_members ? 'source'
                then jsonb_build_object('legacy_source', entry_value_without_members -> 'source')
            else '{}'::jsonb
        end as metadata,
        case
            when jsonb_typeof(entry_value_without_members -> 'market_cap_threshold') = 'number'
                then jsonb_build_object(
                    'market_cap_threshold', entry_value_without_members -> 'market_cap_threshold'
                )
        end as liquidity_filter,
        coalesce(
            {{ parse_iso_timestamp(json_text_at('entry_value_without_members', 'last_updated')) }},
            source_updated_at
        ) as last_update,
        {{ json_text_at('entry_value_without_members', 'last_updated') }} as last_updated_text,
        cache_entry_id,
        content_checksum

    from published_entries

)

select * from final
