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
        -- provenance under `source`; the value's own keys are all kept.  A value's own
        -- `source` moves to `legacy_source`; when the value also has a `legacy_source` (or a
        -- `legacy_fields`), all three of its own keys are kept under `legacy_fields` instead,
        -- so that metadata minus provenance always gives the value back (minus its lists)
        jsonb_build_object(
            'source', jsonb_build_object(
                'type', cache_type,
                'key', entry_key,
                'name', entry_name,
                'checksum', content_checksum
            )
        )
        || (entry_value_without_members - 'source' - 'legacy_source' - 'legacy_fields')
        || case
            when entry_value_without_members ?| array['legacy_source', 'legacy_fields']
                then jsonb_build_object(
                    'legacy_fields', entry_value_without_members - array(
                        select own_keys.own_key
                        from
                            jsonb_object_keys(published_entries.entry_value_without_members)
                                as own_keys (own_key)
                        where own_keys.own_key not in ('source', 'legacy_source', 'legacy_fields')
                    )
                )
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
        -- any JSON (a number, an object, ...): reported when it is not a usable date
        entry_value_without_members -> 'last_updated' as last_updated_value,
        cache_entry_id,
        content_checksum

    from published_entries

)

select * from final
