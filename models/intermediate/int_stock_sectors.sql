{#-
    One row per stock_metadata entry of this run's environment: the stock's normalised
    symbol, the SECTOR group its `sector` names (by the sector's key or display name,
    case-insensitive) and its industry; or, when it cannot join a sector, why (stock_problem).
-#}
{%- set environment = migration_environment() -%}

with

cache_entries as (

    select * from {{ ref('stg_legacy__cache_entries') }}
    where
        is_known_environment
        and environment = '{{ environment }}'
        and cache_type = 'stock_metadata'

),

sector_groups as (

    select
        entry_key as sector_key,
        entry_name as sector_name
    from {{ ref('int_group_entries') }}
    where group_type = 'SECTOR' and is_published

),

stock_entries as (

    select
        cache_entry_id,
        entry_key,
        entry_name,
        entry_value,
        raw_environment,
        source_updated_at,
        -- only a-z are upper-cased: upper() follows the server's locale ('ıbm' became IBM)
        translate(btrim(entry_key), 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')
            as symbol,
        nullif(btrim({{ json_text_at('entry_value', 'sector') }}), '') as sector_label,
        {{ json_text_at('entry_value', 'industry') }} as industry

    from cache_entries

),

ranked_stocks as (

    select
        *,
        row_number() over (
            partition by symbol
            order by source_updated_at desc nulls last, cache_entry_id desc
        ) as version_rank

    from stock_entries

),

sector_matches as (

    select distinct on (ranked_stocks.cache_entry_id)
        ranked_stocks.cache_entry_id,
        sector_groups.sector_key

    from ranked_stocks
    inner join sector_groups
        on lower(ranked_stocks.sector_label) in (
            lower(sector_groups.sector_key),
            lower(sector_groups.sector_name),
            lower(replace(sector_groups.sector_key, '_', ' '))
        )
    order by
        ranked_stocks.cache_entry_id asc,
        (lower(ranked_stocks.sector_label) = lower(sector_groups.sector_key)) desc,
        sector_groups.sector_key

),

final as (

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
        end as stock_problem

    from ranked_stocks
    left join sector_matches
        on ranked_stocks.cache_entry_id = sector_matches.cache_entry_id

)

select * from final
