{#-
    Everything from the legacy cache that this run's environment does not migrate as-is,
    one row per entry or element, with the reason.  severity 'error' means the entry or
    element was left out; 'warning' means it was migrated with a documented correction.
    Entries whose environment is not a valid one belong to no environment, so every run
    reports them.
-#}
{%- set environment = migration_environment() -%}

with

cache_entries as (

    select * from {{ ref('stg_legacy__cache_entries') }}

),

cache_type_mappings as (

    select * from {{ ref('cache_type_mappings') }}

),

group_entries as (

    select * from {{ ref('int_group_entries') }}

),

stock_sectors as (

    select * from {{ ref('int_stock_sectors') }}
    where not is_removed

),

member_elements as (

    select * from {{ ref('int_member_elements') }}

),

definition_groups as (

    select * from {{ ref('int_definition_groups') }}

),

migrated_types as (

    select cache_type from cache_type_mappings
    union all
    select 'stock_metadata'

),

environment_exceptions as (

    select
        cache_entries.cache_entry_id,
        cache_entries.cache_type,
        cache_entries.entry_key,
        cache_entries.entry_name,
        cache_entries.raw_environment,
        null::integer as element_position,
        null::jsonb as element,
        null::text as symbol,
        case
            when not cache_entries.is_known_environment then 'invalid_environment'
            else 'respelled_environment'
        end as reason,
        case when not cache_entries.is_known_environment then 'error' else 'warning' end
            as severity,
        case
            when not cache_entries.is_known_environment
                then format(
                    'environment %L is not one of DEFAULT, TEST, UAT, PROD, so no run migrates this entry',
                    cache_entries.raw_environment
                )
            else format(
                'environment %L was read as %s',
                cache_entries.raw_environment, cache_entries.environment
            )
        end as detail

    from cache_entries
    inner join migrated_types
        on cache_entries.cache_type = migrated_types.cache_type
    where
        -- an exact spelling is never an exception: decided without normalising most rows
        cache_entries.raw_environment not in ('DEFAULT', 'TEST', 'UAT', 'PROD')
        and (
            not cache_entries.is_known_environment
            or (
                cache_entries.environment = '{{ environment }}'
                and cache_entries.is_environment_respelled
            )
        )

),

entry_exceptions as (

    select
        cache_entry_id,
        cache_type,
        entry_key,
        entry_name,
        raw_environment,
        null::integer as element_position,
        null::jsonb as element,
        null::text as symbol,
        entry_problem as reason,
        'error' as severity,
        case entry_problem
            when 'superseded_entry'
                then 'a more recently updated entry with the same type and key replaces this one'
            when 'invalid_name' then 'the key is blank, so the group would have no name'
            when 'name_too_long'
                then format(
                    'group name is %s characters; definition_groups.name holds at most 100',
                    char_length(group_name)
                )
            when 'unknown_shape'
                then format(
                    'the value (a JSON %s) has no member list where a %s entry keeps it',
                    entry_value_json_type, cache_type
                )
            when 'name_collision'
                then format(
                    'another entry already becomes the %s group named %L', group_type, group_name
                )
        end as detail

    from group_entries
    where entry_problem is not null

),

stock_exceptions as (

    select
        cache_entry_id,
        'stock_metadata' as cache_type,
        entry_key,
        entry_name,
        raw_environment,
        null::integer as element_position,
        null::jsonb as element,
        symbol,
        stock_problem as reason,
        'error' as severity,
        case stock_problem
            when 'superseded_entry'
                then 'a more recently updated stock_metadata entry for the same symbol replaces this one'
            when 'invalid_symbol'
                then format('key %L is not a valid symbol', entry_key)
            when 'missing_sector' then 'the stock has no sector, so it joins no SECTOR group'
            when 'unmatched_sector'
                then format('sector %L names no sector_industry_map entry', sector_label)
        end as detail

    from stock_sectors
    where stock_problem is not null

),

element_exceptions as (

    select
        member_elements.cache_entry_id,
        member_elements.source_type as cache_type,
        member_elements.source_key as entry_key,
        group_entries.entry_name,
        group_entries.raw_environment,
        member_elements.element_position,
        member_elements.element,
        member_elements.symbol,
        coalesce(member_elements.element_problem, member_elements.weight_problem) as reason,
        case when member_elements.element_problem is null then 'warning' else 'error' end
            as severity,
        case coalesce(member_elements.element_problem, member_elements.weight_problem)
            when 'invalid_element'
                then format(
                    'element is a JSON %s, not a symbol string or an object with symbol or ticker',
                    jsonb_typeof(member_elements.element)
                )
            when 'invalid_symbol'
                then format(
                    'symbol %L is not 1-10 characters of A-Z, 0-9, ".", "-"',
                    member_elements.symbol
                )
            when 'duplicate_in_group'
                then format('%s already appears earlier in this group', member_elements.symbol)
            when 'invalid_weight'
                then
                    'weight is not a number in [0, 1] (weight) or [0, 100] (weight_pct); '
                    || 'kept with a NULL weight'
        end as detail

    from member_elements
    inner join group_entries
        on member_elements.cache_entry_id = group_entries.cache_entry_id
    where
        member_elements.element_problem is not null
        or member_elements.weight_problem is not null

),

timestamp_exceptions as (

    select
        definition_groups.cache_entry_id,
        definition_groups.source_type as cache_type,
        definition_groups.source_key as entry_key,
        group_entries.entry_name,
        group_entries.raw_environment,
        null::integer as element_position,
        to_jsonb(definition_groups.last_updated_text) as element,
        null::text as symbol,
        'invalid_last_updated' as reason,
        'warning' as severity,
        format(
            'last_updated %L is not an ISO-8601 instant; last_update uses the row''s own timestamp',
            definition_groups.last_updated_text
        ) as detail

    from definition_groups
    inner join group_entries
        on definition_groups.cache_entry_id = group_entries.cache_entry_id
    where
        definition_groups.last_updated_text is not null
        and {{ parse_iso_timestamp('definition_groups.last_updated_text') }} is null

),

all_exceptions as (

    select * from environment_exceptions
    union all
    select * from entry_exceptions
    union all
    select * from stock_exceptions
    union all
    select * from element_exceptions
    union all
    select * from timestamp_exceptions

),

final as (

    select
        '{{ environment }}'::text as environment,
        *
    from all_exceptions

)

select * from final
