{#-
    One row per element of every published group's member list: each element of an ETF's
    holdings, a theme's symbols or a universe's list (strings or {symbol|ticker, weight |
    weight_pct} objects).  The element is kept whole next to what was read from it, and
    element_problem says why an element cannot be a membership (weight_problem flags a kept
    member whose weight was unusable).  SECTOR members come from int_stock_sectors instead.

    Incremental by entry: the pre-hook deletes the elements of every entry that changed or
    left (its member_list_checksum no longer published), and a run unnests only the entries
    that have no elements stored.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[
            {'columns': ['cache_entry_id', 'member_list_checksum']},
            {'columns': ['source_type', 'source_key']},
        ],
        pre_hook="{{ delete_stale_member_elements() }}",
        post_hook=(
            "{{ create_partial_index('cache_entry_id',"
            " 'element_problem is not null or weight_problem is not null') }}"
        ),
    )
}}

with

published_lists as (

    select * from {{ ref('int_group_entries') }}
    where is_published and member_list_path <> '(stock_metadata)'

),

group_entry_contents as (

    select
        cache_entry_id,
        member_list_checksum,
        member_list
    from {{ ref('int_group_entry_contents') }}

),

group_entries as (

    -- the lists to unnest: every one on a first build, then only those with no elements
    -- stored; the list is the one its checksum was computed from (same contents row)
    select
        published_lists.*,
        group_entry_contents.member_list

    from published_lists
    inner join group_entry_contents
        on
            published_lists.cache_entry_id = group_entry_contents.cache_entry_id
            and published_lists.member_list_checksum = group_entry_contents.member_list_checksum
    {%- if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as stored_elements
        where stored_elements.cache_entry_id = published_lists.cache_entry_id
    )
    {%- endif %}

),

list_elements as (

    select
        group_entries.environment,
        group_entries.group_type,
        group_entries.cache_type as source_type,
        group_entries.entry_key as source_key,
        group_entries.cache_entry_id,
        group_entries.member_list_checksum,
        group_entries.cache_type as element_cache_type,
        group_entries.entry_key as element_entry_key,
        listed.ordinality::integer as element_position,
        listed.element

    from group_entries
    cross join
        lateral
        jsonb_array_elements(group_entries.member_list) with ordinality as listed (element, ordinality)

),

parsed_list_elements as (

    select
        *,
        {{ element_symbol_text('element') }} as raw_symbol,
        {{ element_weight('element') }} as weight,
        jsonb_typeof(element) = 'object' and (element ? 'weight' or element ? 'weight_pct')
            as has_weight,
        {{ element_attributes('element') }} as element_attributes

    from list_elements

),

list_members as (

    select
        environment,
        group_type,
        source_type,
        source_key,
        cache_entry_id,
        member_list_checksum,
        element_cache_type,
        element_entry_key,
        element_position,
        element,
        {{ folded_symbol('raw_symbol') }} as symbol,
        weight,
        has_weight and weight is null as has_unusable_weight,
        -- the computed position always wins; the element's own keys are all kept, those that
        -- would overwrite a computed key (position, and element itself) nested under element
        (element_attributes - 'position' - 'element')
        || jsonb_build_object('position', element_position)
        || case
            when element_attributes ?| array['position', 'element']
                then jsonb_build_object(
                    'element', element_attributes - array(
                        select own_keys.own_key
                        from jsonb_object_keys(parsed_list_elements.element_attributes) as own_keys (own_key)
                        where own_keys.own_key not in ('position', 'element')
                    )
                )
            else '{}'::jsonb
        end as membership_metadata,
        raw_symbol is null as is_unreadable

    from parsed_list_elements

),

ranked_members as (

    select
        *,
        case
            when not is_unreadable and {{ is_valid_symbol('symbol') }}
                then row_number() over (
                    partition by
                        cache_entry_id,
                        not is_unreadable and {{ is_valid_symbol('symbol') }},
                        symbol
                    order by element_position nulls last, element_entry_key
                )
        end as symbol_rank

    from list_members

),

final as (

    select
        environment,
        group_type,
        source_type,
        source_key,
        cache_entry_id,
        member_list_checksum,
        element_cache_type,
        element_entry_key,
        element_position,
        element,
        symbol,
        weight,
        membership_metadata,
        case
            when is_unreadable then 'invalid_element'
            when not {{ is_valid_symbol('symbol') }} then 'invalid_symbol'
            when symbol_rank > 1 then 'duplicate_in_group'
        end as element_problem,
        case when has_unusable_weight then 'invalid_weight' end as weight_problem

    from ranked_members

)

select * from final
