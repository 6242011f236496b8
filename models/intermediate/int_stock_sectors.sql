{#-
    One row per stock_metadata entry of this run's environment: the stock's normalised
    symbol, the SECTOR group its `sector` names (by the sector's key or display name,
    case-insensitive) and its industry; or, when it cannot join a sector, why (stock_problem).

    Incremental by row version: a run compares every entry's xmin (source_row_version, free
    to read) with the one stored, and recomputes only the symbols whose entries were added,
    changed or removed (all versions of such a symbol, since the newest one wins), or every
    stock when the set of sectors changed.  A removed entry stays as a tombstone (is_removed)
    until definition_groups has published its removal.  changed_batch says in which batch a
    row was last rewritten; the pre-hook claims it, so that the statement calls no
    parallel-unsafe function and the comparison, a hash join over every stock of the
    environment, can run in parallel (PostgreSQL 16 and newer) and in memory (work_mem).
    Two partial indexes serve the readers of the few odd rows: the exceptions (problems)
    and the tombstone pruning that starts every run.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='cache_entry_id',
        on_schema_change='fail',
        indexes=[
            {'columns': ['cache_entry_id'], 'unique': true},
            {'columns': ['symbol']},
            {'columns': ['changed_batch']},
        ],
        pre_hook=[
            "{{ prune_published_tombstones() }}",
            "{{ claim_change_batch() }}",
            "set local work_mem = '64MB'",
        ],
        post_hook=[
            "{{ create_partial_index('cache_entry_id', 'stock_problem is not null and not is_removed') }}",
            "{{ create_partial_index('changed_batch', 'is_removed') }}",
        ],
    )
}}
{%- set environment = migration_environment() -%}

with

cache_entries as (

    select * from {{ ref('stg_legacy__cache_entries') }}
    where
        {{ in_run_environment() }}
        and cache_type = 'stock_metadata'

),

sector_groups as (

    select
        entry_key as sector_key,
        entry_name as sector_name
    from {{ ref('int_group_entries') }}
    where group_type = 'SECTOR' and is_published

),

sector_catalog as (

    select
        md5(coalesce(string_agg(sector_key || '=' || sector_name, '|' order by sector_key), ''))
            as sector_catalog_checksum
    from sector_groups

),

stock_entries as not materialized (

    -- read twice on incremental runs (to compare, then to recompute): inlined, so the second
    -- read fetches only the changed rows by index
    select
        cache_entry_id,
        entry_key,
        entry_name,
        entry_value,
        raw_environment,
        source_updated_at,
        source_row_version,
        {{ folded_symbol('entry_key') }} as symbol

    from cache_entries

),

{%- if is_incremental() %}

changed_stocks as materialized (

    -- entries added, changed or removed since the last run, or matched against other
    -- sectors than today's.  Any write to a row gives it a new xmin, so the row version
    -- alone tells a changed entry: a stock whose (id, version) is found on one side only
    -- changed.  A changed entry shows twice, as its current version (cache_entry_id) and
    -- its stored one (stored_cache_entry_id); a removed one only as the stored one.
    select
        stock_entries.cache_entry_id,
        stock_entries.symbol,
        stored_stocks.cache_entry_id as stored_cache_entry_id,
        stored_stocks.symbol as stored_symbol

    from stock_entries
    full outer join (
        select
            cache_entry_id,
            symbol,
            source_row_version,
            sector_catalog_checksum
            = (select sector_catalog.sector_catalog_checksum from sector_catalog)
                as is_matched_to_current_sectors
        from {{ this }}
        where not is_removed
    ) as stored_stocks
        on
            stock_entries.cache_entry_id = stored_stocks.cache_entry_id
            and stock_entries.source_row_version = stored_stocks.source_row_version
            and stored_stocks.is_matched_to_current_sectors
    where stock_entries.cache_entry_id is null or stored_stocks.cache_entry_id is null

),

changed_symbols as (

    select changed_stocks.symbol from changed_stocks where changed_stocks.symbol is not null
    union
    select changed_stocks.stored_symbol from changed_stocks where changed_stocks.stored_symbol is not null

),

removed_stocks as (

    -- stored stocks whose entry is gone: on the stored side only, under no current version
    select stored_stocks.*
    from {{ this }} as stored_stocks
    where stored_stocks.cache_entry_id in (
        select changed_stocks.stored_cache_entry_id
        from changed_stocks
        where changed_stocks.stored_cache_entry_id is not null
        except
        select changed_stocks.cache_entry_id
        from changed_stocks
        where changed_stocks.cache_entry_id is not null
    )

),

{%- endif %}

stocks_to_rank as (

    -- every stock on a first build; then every current version of a changed symbol: the
    -- changed entries and their stored siblings
    select * from stock_entries
    {%- if is_incremental() %}
    where
        -- arrays, not joins: the planner then reads the few changed rows by index
        cache_entry_id = any(array(
            select changed_stocks.cache_entry_id
            from changed_stocks
            where changed_stocks.cache_entry_id is not null
            union
            select stored_stocks.cache_entry_id
            from {{ this }} as stored_stocks
            where
                not stored_stocks.is_removed
                and stored_stocks.symbol = any(array(select changed_symbols.symbol from changed_symbols))
        ))
    {%- endif %}

),

change_batch as (

    -- claimed by the pre-hook (NULL where no hook ran: unit tests)
    select current_setting('{{ change_batch_setting() }}', true)::bigint as changed_batch

),

parsed_stocks as (

    select
        *,
        nullif(btrim({{ json_text_at('entry_value', 'sector') }}), '') as sector_label,
        {{ json_text_at('entry_value', 'industry') }} as industry

    from stocks_to_rank

),

ranked_stocks as (

    select
        *,
        row_number() over (
            partition by symbol
            order by source_updated_at desc nulls last, cache_entry_id desc
        ) as version_rank

    from parsed_stocks

),

sector_matches as (

    select distinct on (ranked_stocks.cache_entry_id)
        ranked_stocks.cache_entry_id,
        sector_groups.sector_key

    from ranked_stocks
    inner join sector_groups
        on {{ sector_label_matches(
            'ranked_stocks.sector_label', 'sector_groups.sector_key', 'sector_groups.sector_name'
        ) }}
    order by
        ranked_stocks.cache_entry_id asc,
        {{ sector_match_order('ranked_stocks.sector_label', 'sector_groups.sector_key') }}

),

recomputed_stocks as (

    select
        ranked_stocks.cache_entry_id,
        ranked_stocks.entry_key,
        ranked_stocks.entry_name,
        ranked_stocks.raw_environment,
        ranked_stocks.symbol,
        ranked_stocks.sector_label,
        sector_matches.sector_key,
        ranked_stocks.industry,
        case
            when ranked_stocks.version_rank > 1 then 'superseded_entry'
            when not {{ is_valid_symbol('ranked_stocks.symbol') }} then 'invalid_symbol'
            when ranked_stocks.sector_label is null then 'missing_sector'
            when sector_matches.sector_key is null then 'unmatched_sector'
        end as stock_problem,
        ranked_stocks.source_updated_at,
        ranked_stocks.source_row_version,
        sector_catalog.sector_catalog_checksum,
        false as is_removed,
        change_batch.changed_batch

    from ranked_stocks
    cross join sector_catalog
    cross join change_batch
    left join sector_matches
        on ranked_stocks.cache_entry_id = sector_matches.cache_entry_id

),

final as (

    select * from recomputed_stocks
    {%- if is_incremental() %}

    union all

    select
        removed_stocks.cache_entry_id,
        removed_stocks.entry_key,
        removed_stocks.entry_name,
        removed_stocks.raw_environment,
        removed_stocks.symbol,
        removed_stocks.sector_label,
        null::varchar(100) as sector_key,
        null::text as industry,
        null::text as stock_problem,
        removed_stocks.source_updated_at,
        removed_stocks.source_row_version,
        removed_stocks.sector_catalog_checksum,
        true as is_removed,
        change_batch.changed_batch

    from removed_stocks
    cross join change_batch
    {%- endif %}

)

select * from final
