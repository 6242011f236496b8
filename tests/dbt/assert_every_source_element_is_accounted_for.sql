{#-
    Reconciliation identity, counted independently of the intermediate models' unnesting:
    every element of every mapped cache entry in this environment is either a membership in
    the published tables or an exception — per group, source elements = memberships +
    dropped elements; an entry that is not published has an entry-level exception; every
    stock_metadata entry is a SECTOR membership or an exception; and every entry with an
    invalid environment is reported.  Returns one row per violation.
-#}
{%- set environment = migration_environment() -%}

with

cache_entries as (

    select * from {{ ref('stg_legacy__cache_entries') }}

),

cache_type_mappings as (

    select * from {{ ref('cache_type_mappings') }}

),

exceptions as (

    select * from {{ ref('int_migration_exceptions') }}

),

published_groups as (

    select
        definition_groups.id,
        definition_groups.metadata -> 'source' ->> 'type' as source_type,
        definition_groups.metadata -> 'source' ->> 'key' as source_key
    from {{ ref('definition_groups') }} as definition_groups
    where definition_groups.environment = '{{ environment }}' and definition_groups.metadata ? 'source'

),

membership_counts as (

    select
        group_memberships.group_id,
        count(*) as memberships
    from {{ ref('group_memberships') }} as group_memberships
    group by group_memberships.group_id

),

list_entries as (

    select
        cache_entries.cache_entry_id,
        cache_entries.cache_type,
        cache_entries.entry_key,
        case cache_type_mappings.member_source
            when 'holdings'
                then case
                    when jsonb_typeof(cache_entries.entry_value -> 'holdings') = 'array'
                        then jsonb_array_length(cache_entries.entry_value -> 'holdings')
                end
            when 'symbols'
                then case
                    when jsonb_typeof(cache_entries.entry_value -> 'symbols') = 'array'
                        then jsonb_array_length(cache_entries.entry_value -> 'symbols')
                end
            when 'universe' then case
                when jsonb_typeof(cache_entries.entry_value) = 'array'
                    then jsonb_array_length(cache_entries.entry_value)
                when jsonb_typeof(cache_entries.entry_value -> 'symbols') = 'array'
                    then jsonb_array_length(cache_entries.entry_value -> 'symbols')
                when jsonb_typeof(cache_entries.entry_value -> 'stocks') = 'array'
                    then jsonb_array_length(cache_entries.entry_value -> 'stocks')
                when jsonb_typeof(cache_entries.entry_value -> 'etfs') = 'array'
                    then jsonb_array_length(cache_entries.entry_value -> 'etfs')
            end
        end as source_elements
    from cache_entries
    inner join cache_type_mappings
        on cache_entries.cache_type = cache_type_mappings.cache_type
    where
        cache_entries.is_known_environment
        and cache_entries.environment = '{{ environment }}'
        and cache_type_mappings.member_source <> 'stock_metadata'

),

entry_accounts as (

    select
        list_entries.cache_entry_id,
        list_entries.cache_type,
        list_entries.entry_key,
        list_entries.source_elements,
        published_groups.id as group_id,
        coalesce(membership_counts.memberships, 0) as memberships,
        (
            select count(*) from exceptions
            where
                exceptions.cache_entry_id = list_entries.cache_entry_id
                and exceptions.severity = 'error'
                and exceptions.element_position is not null
        ) as dropped_elements,
        (
            select count(*) from exceptions
            where
                exceptions.cache_entry_id = list_entries.cache_entry_id
                and exceptions.severity = 'error'
                and exceptions.element_position is null
        ) as entry_exceptions
    from list_entries
    left join published_groups
        on
            list_entries.cache_type = published_groups.source_type
            and list_entries.entry_key = published_groups.source_key
            and not exists (
                select 1 from exceptions
                where
                    exceptions.cache_entry_id = list_entries.cache_entry_id
                    and exceptions.element_position is null
                    and exceptions.severity = 'error'
            )
    left join membership_counts
        on published_groups.id = membership_counts.group_id

),

entry_violations as (

    select
        'list entry' as subject,
        cache_type || ':' || entry_key || ' (id ' || cache_entry_id || ')' as detail,
        source_elements,
        memberships + dropped_elements as accounted_elements
    from entry_accounts
    where
        (group_id is null and entry_exceptions = 0)
        or (group_id is not null and source_elements <> memberships + dropped_elements)

),

stock_accounts as (

    select
        (
            select count(*) from cache_entries
            where
                cache_type = 'stock_metadata'
                and is_known_environment
                and environment = '{{ environment }}'
        ) as source_elements,
        (
            select coalesce(sum(membership_counts.memberships), 0)
            from membership_counts
            inner join {{ ref('definition_groups') }} as definition_groups
                on membership_counts.group_id = definition_groups.id
            where
                definition_groups.environment = '{{ environment }}'
                and definition_groups.type = 'SECTOR'
                and definition_groups.metadata ? 'source'
        ) as memberships,
        (
            select count(*) from exceptions
            where
                exceptions.cache_type = 'stock_metadata' and exceptions.severity = 'error'
                and exceptions.reason <> 'invalid_environment'
        ) as dropped_elements

),

stock_violations as (

    select
        'stock_metadata' as subject,
        'sector memberships + stock exceptions <> stock_metadata entries' as detail,
        source_elements,
        memberships + dropped_elements as accounted_elements
    from stock_accounts
    where source_elements <> memberships + dropped_elements

),

environment_violations as (

    select
        'invalid environment' as subject,
        cache_entries.cache_type || ':' || cache_entries.entry_key
        || ' in ' || quote_literal(cache_entries.raw_environment) as detail,
        null::bigint as source_elements,
        null::bigint as accounted_elements
    from cache_entries
    where
        not cache_entries.is_known_environment
        and (
            cache_entries.cache_type in (select mapped.cache_type from cache_type_mappings as mapped)
            or cache_entries.cache_type = 'stock_metadata'
        )
        and not exists (
            select 1 from exceptions
            where
                exceptions.cache_entry_id = cache_entries.cache_entry_id
                and exceptions.reason = 'invalid_environment'
        )

)

select * from entry_violations
union all
select * from stock_violations
union all
select * from environment_violations
