{#-
    One row per legacy cache entry of this run's environment (and per entry whose
    environment is not a valid one): is it fully represented in the two tables — every
    element a membership or an explained exception — and if not, why.  Element counts come
    straight from the legacy JSON, independently of the intermediate models, so this is the
    reconciliation identity, entry by entry (tests/dbt asserts it has no 'unexplained' row).
    It counts the rows the migration wrote (its ledger); another writer's rows in a migrated
    group are counted apart (foreign_memberships), kept, and never make an entry unexplained.
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

owned_groups as (

    -- the groups the migration wrote (its ledger), with the entry each was built for
    select
        ledger_groups.group_id,
        ledger_groups.group_type,
        ledger_groups.source_type,
        ledger_groups.source_key
    from {{ ref('stg_migration_state__ledger_groups') }} as ledger_groups
    inner join {{ ref('definition_groups') }} as definition_groups
        on ledger_groups.group_id = definition_groups.id
    where ledger_groups.environment = '{{ environment }}'

),

group_memberships as (

    select
        group_memberships.id,
        group_memberships.group_id,
        group_memberships.symbol,
        ledger_memberships.membership_id is not null as is_owned
    from {{ ref('group_memberships') }} as group_memberships
    left join {{ ref('stg_migration_state__ledger_memberships') }} as ledger_memberships
        on group_memberships.id = ledger_memberships.membership_id
    where group_memberships.group_id in (select owned_groups.group_id from owned_groups)

),

listed_symbols as (

    -- the symbols each list entry's elements name (to tell which of another writer's rows
    -- in a migrated group stand for a source element)
    select distinct
        source_type,
        source_key,
        symbol
    from {{ ref('int_member_elements') }}
    where element_problem is null

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

    -- per entry: the memberships the migration wrote, the rows of other writers that hold one
    -- of its elements (the migration then writes no second row), and their other rows
    select
        owned_groups.source_type,
        owned_groups.source_key,
        count(group_memberships.id) filter (
            where group_memberships.is_owned or listed_symbols.symbol is not null
        ) as memberships,
        count(group_memberships.id) filter (where not group_memberships.is_owned) as foreign_memberships
    from owned_groups
    left join group_memberships
        on owned_groups.group_id = group_memberships.group_id
    left join listed_symbols
        on
            not group_memberships.is_owned
            and owned_groups.source_type = listed_symbols.source_type
            and owned_groups.source_key = listed_symbols.source_key
            and group_memberships.symbol = listed_symbols.symbol
    group by owned_groups.source_type, owned_groups.source_key

),

sector_members as (

    select distinct group_memberships.symbol
    from group_memberships
    inner join owned_groups
        on group_memberships.group_id = owned_groups.group_id
    where owned_groups.group_type = 'SECTOR'

),

classified_entries as (

    select
        cache_entries.cache_entry_id,
        cache_entries.cache_type,
        cache_entries.entry_key,
        cache_entries.entry_name,
        cache_entries.raw_environment,
        cache_type_mappings.member_source,
        -- every place member_source names that the value has ('(value)': a plain array
        -- value; any other name: that array of an object value), all read; NULL when none
        case
            when cache_type_mappings.member_source <> 'stock_metadata'
                then (
                    select
                        sum(
                            jsonb_array_length(
                                case
                                    when places.place = '(value)' then cache_entries.entry_value
                                    else cache_entries.entry_value -> places.place
                                end
                            )
                        )
                    from unnest(string_to_array(cache_type_mappings.member_source, '+')) as places (place)
                    where
                        case
                            when places.place = '(value)'
                                then jsonb_typeof(cache_entries.entry_value) = 'array'
                            else
                                jsonb_typeof(cache_entries.entry_value) = 'object'
                                and jsonb_typeof(cache_entries.entry_value -> places.place) = 'array'
                        end
                )::integer
        end as source_elements,
        group_sizes.memberships,
        coalesce(group_sizes.foreign_memberships, 0) as foreign_memberships,
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
            and {{ folded_symbol('cache_entries.entry_key') }} = sector_members.symbol

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
        foreign_memberships,
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
                then
                    memberships || ' memberships + ' || dropped_elements || ' recorded exceptions'
                    || case
                        when foreign_memberships > 0
                            then '; ' || foreign_memberships || ' rows of other writers in its group, kept'
                        else ''
                    end
            else
                (source_elements - memberships - dropped_elements)
                || ' of ' || source_elements || ' elements are neither memberships nor exceptions'
        end as detail
    from classified_entries

)

select * from final
