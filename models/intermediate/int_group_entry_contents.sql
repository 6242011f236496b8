{#-
    One row per cache entry of a mapped type (see the cache_type_mappings seed) in this
    run's environment: what its current row version says, read once — the group it would
    become, where its member list is, the list itself and the checksums.  Which entries get
    published is decided downstream (int_group_entries), over every entry's cheap columns.

    Incremental by row version: the pre-hook deletes the rows whose entry changed (its xmin,
    source_row_version), left the environment or had its mapping changed, and a run reads
    only the entries with no row stored.  An entry's content and its checksums are written
    together, from one row version, so a source write during a run can make this model one
    run late, never inconsistent.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[{'columns': ['cache_entry_id'], 'unique': true}],
        pre_hook="{{ delete_stale_entry_contents() }}",
    )
}}

with

cache_type_mappings as (

    select
        *,
        {{ mapping_checksum('cache_type_mappings') }} as mapping_checksum
    from {{ ref('cache_type_mappings') }} as cache_type_mappings

),

cache_entries as (

    select * from {{ ref('stg_legacy__cache_entries') }}
    where
        {{ in_run_environment() }}
        -- an array, not a join: lets the planner read only the mapped types by index
        and cache_type = any(
            array(select mappings.cache_type from {{ ref('cache_type_mappings') }} as mappings)
        )

),

entries_to_read as (

    -- every entry on a first build, then only those with no row stored
    select * from cache_entries
    {%- if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as stored_contents
        where stored_contents.cache_entry_id = cache_entries.cache_entry_id
    )
    {%- endif %}

),

mapped_entries as (

    select
        entries_to_read.cache_entry_id,
        entries_to_read.source_row_version,
        entries_to_read.cache_type,
        entries_to_read.entry_key,
        entries_to_read.entry_name,
        entries_to_read.entry_value,
        entries_to_read.entry_value_json_type,
        entries_to_read.environment,
        entries_to_read.raw_environment,
        entries_to_read.is_environment_respelled,
        entries_to_read.source_updated_at,
        entries_to_read.content_checksum,
        cache_type_mappings.mapping_checksum,
        cache_type_mappings.group_type,
        cache_type_mappings.member_source,
        {{ group_name_of('entries_to_read.entry_key', 'cache_type_mappings.name_prefix') }}
            as group_name,
        case cache_type_mappings.description_source
            when 'entry_name' then entries_to_read.entry_name
            when 'value_description'
                then {{ json_text_at('entries_to_read.entry_value', 'description') }}
        end as group_description

    from entries_to_read
    inner join cache_type_mappings
        on entries_to_read.cache_type = cache_type_mappings.cache_type

),

entries_with_member_lists as (

    -- where the members are: every place the mapping's member_source names that the value
    -- has, in its order ('(value)': a plain array value; any other name: that array of an
    -- object value), joined by '+' (e.g. 'holdings+symbols'); sectors read stock_metadata
    select
        *,
        case
            when member_source = 'stock_metadata'
                then case when entry_value_json_type = 'object' then '(stock_metadata)' end
            else (
                select string_agg(places.place, '+' order by places.place_order)
                from
                    unnest(string_to_array(mapped_entries.member_source, '+'))
                    with ordinality as places (place, place_order)
                where
                    case
                        when places.place = '(value)' then mapped_entries.entry_value_json_type = 'array'
                        else
                            mapped_entries.entry_value_json_type = 'object'
                            and jsonb_typeof(mapped_entries.entry_value -> places.place) = 'array'
                    end
            )
        end as member_list_path

    from mapped_entries

),

entries_with_member_list_keys as (

    select
        *,
        case
            when member_list_path not in ('(value)', '(stock_metadata)')
                then string_to_array(member_list_path, '+')
        end as member_list_keys

    from entries_with_member_lists

),

read_member_lists as (

    select
        *,
        case
            when member_list_path = '(value)' then entry_value
            when cardinality(member_list_keys) = 1 then entry_value -> member_list_path
            when cardinality(member_list_keys) > 1
                -- the lists one after the other, in the path's order
                then coalesce((
                    select jsonb_agg(listed.element order by lists.list_order, listed.element_order)
                    from
                        unnest(entries_with_member_list_keys.member_list_keys)
                        with ordinality as lists (list_key, list_order)
                    cross join
                        lateral jsonb_array_elements(
                            entries_with_member_list_keys.entry_value -> lists.list_key
                        ) with ordinality as listed (element, element_order)
                ), '[]')
        end as member_list

    from entries_with_member_list_keys

),

final as (

    select
        cache_entry_id,
        source_row_version,
        mapping_checksum,
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
        member_list,
        case when member_list is not null then jsonb_array_length(member_list) end as member_list_length,
        case
            when entry_value_json_type <> 'object' then '{}'::jsonb
            when member_list_keys is not null then entry_value - member_list_keys
            else entry_value
        end as entry_value_without_members,
        content_checksum,
        -- with the readers' version: a release that reads elements differently unnests again
        md5(concat_ws(
            '|', cache_type, entry_key, group_type, member_list_path, content_checksum,
            '{{ reader_version() }}'
        )) as member_list_checksum,
        entry_value_json_type

    from read_member_lists

)

select * from final
