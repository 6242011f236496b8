{#-
    Reconciliation identity, in both directions, for every group type.

    Source to tables: every element of every mapped cache entry of this environment is a
    membership in the published tables or a recorded exception (per group, source elements =
    memberships + dropped elements), every entry that is not published has an entry-level
    exception, every stock_metadata entry is a SECTOR member or an exception, and every entry
    with an invalid environment is reported.  cache_entry_reconciliation counts elements
    from the legacy JSON itself.

    Tables to source: every membership the migration wrote (its ledger) traces to a current
    source element, read
    from cache_entries directly (not from the intermediate models): a list group's member to
    an element of one of its entry's lists, a SECTOR member to a current stock_metadata
    entry with that symbol whose sector names the group.  A stale member (its stock re-keyed,
    moved or deleted) fails this test.

    The test fails on each entry or membership it cannot account for.  Which parity check
    guards what: the description of cache_entry_reconciliation (models/marts/operations/).
-#}
{%- set environment = migration_environment() -%}
{%- set listed_symbol -%}
    case jsonb_typeof(element)
        when 'string' then element #>> '{}'
        when 'object' then coalesce(
            {{ json_text_at('element', 'symbol') }}, {{ json_text_at('element', 'ticker') }}
        )
    end
{%- endset -%}

with

unexplained_entries as (

    select
        cache_entry_id,
        cache_type,
        entry_key,
        raw_environment,
        detail
    from {{ ref('cache_entry_reconciliation') }}
    where status = 'unexplained'

),

cache_entries as (

    select * from {{ ref('stg_legacy__cache_entries') }}
    where is_known_environment and environment = '{{ environment }}'

),

published_memberships as (

    -- the memberships the migration wrote (its ledger), with the entry their group was built
    -- for; another writer's rows, groups or members, are reported by the reconciliation
    select
        ledger_groups.group_id,
        ledger_groups.group_type,
        definition_groups.name as group_name,
        ledger_groups.source_type,
        ledger_groups.source_key,
        group_memberships.symbol
    from {{ ref('group_memberships') }} as group_memberships
    inner join {{ ref('stg_migration_state__ledger_memberships') }} as ledger_memberships
        on group_memberships.id = ledger_memberships.membership_id
    inner join {{ ref('stg_migration_state__ledger_groups') }} as ledger_groups
        on group_memberships.group_id = ledger_groups.group_id
    inner join {{ ref('definition_groups') }} as definition_groups
        on group_memberships.group_id = definition_groups.id
    where ledger_groups.environment = '{{ environment }}'

),

source_lists as (

    -- every list of every current list entry: the value itself, holdings, symbols, stocks, etfs
    select
        cache_entries.cache_type,
        cache_entries.entry_key,
        entry_lists.member_list
    from cache_entries
    cross join
        lateral (
            select cache_entries.entry_value as member_list
            where jsonb_typeof(cache_entries.entry_value) = 'array'
            union all
            select cache_entries.entry_value -> list_keys.list_key as member_list
            from unnest(array['holdings', 'symbols', 'stocks', 'etfs']) as list_keys (list_key)
            where
                jsonb_typeof(cache_entries.entry_value) = 'object'
                and jsonb_typeof(cache_entries.entry_value -> list_keys.list_key) = 'array'
        ) as entry_lists
    where cache_entries.cache_type in (
        select mappings.cache_type
        from {{ ref('cache_type_mappings') }} as mappings
        where mappings.member_source <> 'stock_metadata'
    )

),

source_elements as (

    select
        source_lists.cache_type,
        source_lists.entry_key,
        listed.element
    from source_lists
    cross join lateral jsonb_array_elements(
        case when jsonb_typeof(source_lists.member_list) = 'array' then source_lists.member_list end
    ) as listed (element)

),

source_symbols as (

    select distinct
        cache_type,
        entry_key,
        {{ folded_symbol(listed_symbol) }} as symbol
    from source_elements

),

sector_aliases as (

    -- every text a stock's sector may carry to join the group of a current sector entry:
    -- the entry's key, its name, its key with spaces
    select
        sectors.entry_key as source_key,
        aliases.alias
    from cache_entries as sectors
    cross join
        lateral (
            values
            (lower(sectors.entry_key)),
            (lower(sectors.entry_name)),
            (lower(replace(sectors.entry_key, '_', ' ')))
        ) as aliases (alias)
    where sectors.cache_type = 'sector_industry_map'

),

traced_sector_members as (

    -- (sector entry, symbol) for every current stock_metadata entry whose sector names it: a
    -- set, so that the anti-join below is one hash join, not a scan of the cache per member
    select distinct
        sector_aliases.source_key,
        {{ folded_symbol('stocks.entry_key') }} as symbol
    from cache_entries as stocks
    inner join sector_aliases
        on lower(btrim({{ json_text_at('stocks.entry_value', 'sector') }})) = sector_aliases.alias
    where stocks.cache_type = 'stock_metadata'

),

stale_list_member_keys as (

    -- Published memberships that trace to no current source element, as set differences,
    -- not correlated NOT EXISTS: the staging view's normalised environment has no statistics,
    -- so the planner expects a handful of cache entries and would scan them once per member
    -- (minutes at scale 10); EXCEPT reads each side once, whatever the planner expects.
    select
        source_type::text as source_type,
        source_key::text as source_key,
        symbol::text as symbol
    from published_memberships
    where group_type <> 'SECTOR'
    except
    select
        cache_type::text,
        entry_key::text,
        symbol::text
    from source_symbols

),

stale_sector_member_keys as (

    select
        source_key::text as source_key,
        symbol::text as symbol
    from published_memberships
    where group_type = 'SECTOR'
    except
    select
        source_key::text,
        symbol::text
    from traced_sector_members

),

stale_members as (

    select published_memberships.*
    from published_memberships
    inner join stale_list_member_keys
        on
            published_memberships.source_type = stale_list_member_keys.source_type
            and published_memberships.source_key = stale_list_member_keys.source_key
            and published_memberships.symbol = stale_list_member_keys.symbol
    where published_memberships.group_type <> 'SECTOR'
    union all
    select published_memberships.*
    from published_memberships
    inner join stale_sector_member_keys
        on
            published_memberships.source_key = stale_sector_member_keys.source_key
            and published_memberships.symbol = stale_sector_member_keys.symbol
    where published_memberships.group_type = 'SECTOR'

),

final as (

    select * from unexplained_entries
    union all
    select
        null::integer as cache_entry_id,
        source_type as cache_type,
        source_key as entry_key,
        '{{ environment }}' as raw_environment,
        format(
            '%s member %s of group %s (id %s) traces to no current source element',
            group_type, symbol, group_name, group_id
        ) as detail
    from stale_members

)

select * from final
