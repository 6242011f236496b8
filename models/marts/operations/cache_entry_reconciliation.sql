{#-
    One row per legacy cache entry of this run's environment (and per entry whose
    environment is not a valid one): is it fully represented in the two tables — every
    element a membership or an explained exception — and if not, why.  Element counts come
    straight from the legacy JSON, independently of the intermediate models, so this is the
    reconciliation identity, entry by entry (tests/dbt asserts it has no 'unexplained' row).
-#}
{%- set environment = migration_environment() -%}

with

cache_entries as (

    select * from {{ ref('stg_legacy__cache_entries') }}
    where
        (is_known_environment and environment = '{{ environment }}')
        or not is_known_environment

),

cache_type_mappings as (

    select * from {{ ref('cache_type_mappings') }}

),

exceptions as (

    select * from {{ ref('migration_exceptions') }}

),

definition_groups as (

    select * from {{ ref('definition_groups') }}
    where environment = '{{ environment }}' and metadata ? 'source'

),

group_memberships as (

    select * from {{ ref('group_memberships') }}

),

entry_exceptions as (

    select
        cache_entry_id,
        min(reason) as reason
    from exceptions
    where severity = 'error' and element_position is null
    group by cache_entry_id

),

element_exceptions as (

    select
        cache_entry_id,
        count(*) as dropped_elements
    from exceptions
    where severity = 'error' and element_position is not null
    group by cache_entry_id

),

group_sizes as (

    select
        definition_groups.metadata -> 'source' ->> 'type' as source_type,
        definition_groups.metadata -> 'source' ->> 'key' as source_key,
        count(group_memberships.id) as memberships
    from definition_groups
    left join group_memberships
        on definition_groups.id = group_memberships.group_id
    group by
        definition_groups.metadata -> 'source' ->> 'type',
        definition_groups.metadata -> 'source' ->> 'key'

),

sector_members as (

    select distinct group_memberships.symbol
    from group_memberships
    inner join definition_groups
        on group_memberships.group_id = definition_groups.id
    where definition_groups.type = 'SECTOR'

),

classified_entries as (

    select
        cache_entries.cache_entry_id,
        cache_entries.cache_type,
        cache_entries.entry_key,
        cache_entries.entry_name,
        cache_entries.raw_environment,
        cache_type_mappings.member_source,
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
                -- every list a universe has is read: symbols, stocks and etfs together
                when
                    jsonb_typeof(cache_entries.entry_value) = 'object'
                    and (
                        jsonb_typeof(cache_entries.entry_value -> 'symbols') = 'array'
                        or jsonb_typeof(cache_entries.entry_value -> 'stocks') = 'array'
                        or jsonb_typeof(cache_entries.entry_value -> 'etfs') = 'array'
                    )
                    then
                        case
                            when jsonb_typeof(cache_entries.entry_value -> 'symbols') = 'array'
                                then jsonb_array_length(cache_entries.entry_value -> 'symbols')
                            else 0
                        end
                        + case
                            when jsonb_typeof(cache_entries.entry_value -> 'stocks') = 'array'
                                then jsonb_array_length(cache_entries.entry_value -> 'stocks')
                            else 0
                        end
                        + case
                            when jsonb_typeof(cache_entries.entry_value -> 'etfs') = 'array'
                                then jsonb_array_length(cache_entries.entry_value -> 'etfs')
                            else 0
                        end
            end
        end as source_elements,
        group_sizes.memberships,
        coalesce(element_exceptions.dropped_elements, 0) as dropped_elements,
        entry_exceptions.reason as entry_exception,
        cache_entries.cache_type = 'stock_metadata' as is_stock_metadata,
        sector_members.symbol is not null as is_sector_member,
        cache_type_mappings.cache_type is not null as is_mapped
    from cache_entries
    left join cache_type_mappings
        on cache_entries.cache_type = cache_type_mappings.cache_type
    left join group_sizes
        on
            cache_entries.cache_type = group_sizes.source_type
            and cache_entries.entry_key = group_sizes.source_key
            and cache_entries.is_known_environment
    left join element_exceptions
        on cache_entries.cache_entry_id = element_exceptions.cache_entry_id
    left join entry_exceptions
        on cache_entries.cache_entry_id = entry_exceptions.cache_entry_id
    left join sector_members
        on
            cache_entries.cache_type = 'stock_metadata'
            and upper(btrim(cache_entries.entry_key)) = sector_members.symbol

),

final as (

    select
        '{{ environment }}'::text as environment,
        cache_entry_id,
        cache_type,
        entry_key,
        entry_name,
        raw_environment,
        source_elements,
        memberships,
        dropped_elements,
        case
            when not is_mapped and not is_stock_metadata then 'not_migrated'
            when entry_exception is not null then 'explained'
            when is_stock_metadata and is_sector_member then 'represented'
            when is_stock_metadata then 'unexplained'
            when memberships is null then 'unexplained'
            when member_source = 'stock_metadata' then 'represented'
            when source_elements = memberships + dropped_elements then 'represented'
            else 'unexplained'
        end as status,
        case
            when not is_mapped and not is_stock_metadata
                then 'cache type ' || cache_type || ' is not part of this migration'
            when entry_exception is not null then 'entry left out: ' || entry_exception
            when is_stock_metadata and is_sector_member then 'member of its SECTOR group'
            when is_stock_metadata then 'neither a SECTOR member nor an exception'
            when memberships is null then 'no group and no exception'
            when member_source = 'stock_metadata' then 'sector group published'
            when source_elements = memberships + dropped_elements
                then memberships || ' memberships + ' || dropped_elements || ' recorded exceptions'
            else
                (source_elements - memberships - dropped_elements)
                || ' of ' || source_elements || ' elements are neither memberships nor exceptions'
        end as detail
    from classified_entries

)

select * from final
