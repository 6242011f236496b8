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
                    'environment %L is not one of %s, so no run migrates this entry',
                    cache_entries.raw_environment,
                    '{{ migration_environments() | join(", ") }}'
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
        cache_entries.raw_environment not in {{ environments_sql() }}
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
            when 'invalid_name'
                then
                    'the key is empty once white space and invisible characters are removed, '
                    || 'so the group would have no visible name'
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
                    'the %s group name %L is kept by %s%s', group_type, group_name, name_holder,
                    case
                        when group_name is distinct from comparable_group_name
                            then format(
                                ' (names are compared as read: %L once Unicode-normalised and '
                                || 'stripped of invisible characters)',
                                comparable_group_name
                            )
                        else ''
                    end
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
        definition_groups.last_updated_value as element,
        null::text as symbol,
        'invalid_last_updated' as reason,
        'warning' as severity,
        format(
            'last_updated %s is not an ISO-8601 instant PostgreSQL accepts (a JSON %s); '
            || 'last_update uses the row''s own timestamp',
            left(definition_groups.last_updated_value::text, 200),
            jsonb_typeof(definition_groups.last_updated_value)
        ) as detail

    from definition_groups
    inner join group_entries
        on definition_groups.cache_entry_id = group_entries.cache_entry_id
    where
        definition_groups.last_updated_value is not null
        and (
            definition_groups.last_updated_text is null
            or {{ parse_iso_timestamp('definition_groups.last_updated_text') }} is null
        )

),

stamp_exceptions as (

    -- a row of this environment stamped after this run or before year 1 (a wrong clock, a
    -- year 20000 typo): kept as it is, but dbt source freshness ignores the stamp
    -- (models/staging/legacy/_legacy.yml), so one such row cannot make a stale cache fresh
    select
        cache_entries.cache_entry_id,
        cache_entries.cache_type,
        cache_entries.entry_key,
        cache_entries.entry_name,
        cache_entries.raw_environment,
        null::integer as element_position,
        null::jsonb as element,
        null::text as symbol,
        'implausible_timestamp' as reason,
        'warning' as severity,
        concat_ws(
            '; ',
            case
                when not {{ is_plausible_stamp('cache_entries.created_at') }}
                    then format(
                        'created_at %s UTC is %s',
                        cache_entries.created_at,
                        case
                            when cache_entries.created_at > {{ run_timestamp() }} then 'after this run'
                            else 'before year 1'
                        end
                    )
            end,
            case
                when not {{ is_plausible_stamp('cache_entries.updated_at') }}
                    then format(
                        'updated_at %s UTC is %s',
                        cache_entries.updated_at,
                        case
                            when cache_entries.updated_at > {{ run_timestamp() }} then 'after this run'
                            else 'before year 1'
                        end
                    )
            end
        )
        || '; dbt source freshness ignores it, the row is migrated as it is' as detail

    from cache_entries
    where
        cache_entries.environment = '{{ environment }}'
        and not (
            {{ is_plausible_stamp('cache_entries.created_at') }}
            and {{ is_plausible_stamp('cache_entries.updated_at') }}
        )

),

type_exceptions as (

    -- a look-alike spelling of a type this migration reads: read as that type, reported
    select
        cache_entries.cache_entry_id,
        cache_entries.cache_type,
        cache_entries.entry_key,
        cache_entries.entry_name,
        cache_entries.raw_environment,
        null::integer as element_position,
        null::jsonb as element,
        null::text as symbol,
        'respelled_type' as reason,
        'warning' as severity,
        format('type %L was read as %s', cache_entries.raw_cache_type, cache_entries.cache_type)
            as detail

    from cache_entries
    inner join migrated_types
        on cache_entries.cache_type = migrated_types.cache_type
    where
        cache_entries.is_type_respelled
        and cache_entries.is_known_environment
        and cache_entries.environment = '{{ environment }}'

),

combined_list_exceptions as (

    -- a value with several member lists: every list is read, the entry says which
    select
        cache_entry_id,
        cache_type,
        entry_key,
        entry_name,
        raw_environment,
        null::integer as element_position,
        null::jsonb as element,
        null::text as symbol,
        'combined_member_lists' as reason,
        'warning' as severity,
        format(
            'the value has %s member lists (%s); all were read, in that order, as one list of %s',
            cardinality(string_to_array(member_list_path, '+')),
            replace(member_list_path, '+', ', '),
            member_list_length
        ) as detail

    from group_entries
    where is_published and member_list_path like '%+%'

),

name_case_exceptions as (

    -- names that differ from another published name only by letter case: both groups are
    -- published; each entry is told which others look like it
    select
        cache_entry_id,
        cache_type,
        entry_key,
        entry_name,
        raw_environment,
        null::integer as element_position,
        null::jsonb as element,
        null::text as symbol,
        'name_case_variant' as reason,
        'warning' as severity,
        format(
            'the %s group name %L differs only by letter case from %s; each is a group of its own',
            group_type, group_name, name_case_variants
        ) as detail

    from group_entries
    where is_published and name_case_variants is not null

),

ticker_exceptions as (

    -- an element with both `symbol` and `ticker` that disagree: `symbol` is the member
    select
        member_elements.cache_entry_id,
        member_elements.source_type as cache_type,
        member_elements.source_key as entry_key,
        group_entries.entry_name,
        group_entries.raw_environment,
        member_elements.element_position,
        member_elements.element,
        member_elements.symbol,
        'conflicting_ticker' as reason,
        'warning' as severity,
        format(
            'the element names symbol %s and ticker %s; the member is read from symbol, '
            || 'the ticker is not used',
            left((member_elements.element -> 'symbol')::text, 100),
            left((member_elements.element -> 'ticker')::text, 100)
        ) as detail

    from member_elements
    inner join group_entries
        on member_elements.cache_entry_id = group_entries.cache_entry_id
    where
        jsonb_typeof(member_elements.element) = 'object'
        and member_elements.element ? 'symbol'
        and member_elements.element ? 'ticker'
        and not coalesce(
            jsonb_typeof(member_elements.element -> 'symbol') = 'string'
            and jsonb_typeof(member_elements.element -> 'ticker') = 'string'
            and {{ folded_symbol("member_elements.element ->> 'symbol'") }}
            = {{ folded_symbol("member_elements.element ->> 'ticker'") }},
            false
        )

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
    union all
    select * from stamp_exceptions
    union all
    select * from type_exceptions
    union all
    select * from combined_list_exceptions
    union all
    select * from name_case_exceptions
    union all
    select * from ticker_exceptions

),

final as (

    select
        '{{ environment }}'::text as environment,
        *
    from all_exceptions

)

select * from final
