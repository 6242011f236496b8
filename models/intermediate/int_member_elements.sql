{#-
    One row per source element of every published group: each element of an ETF's
    holdings, a theme's symbols or a universe's list (strings or {symbol|ticker, weight |
    weight_pct} objects), and each stock whose metadata places it in a sector.  The element
    is kept whole next to what was read from it, and element_problem says why an element
    cannot be a membership (weight_problem flags a kept member whose weight was unusable).
-#}

with

group_entries as (

    select * from {{ ref('int_group_entries') }}
    where is_published

),

stock_sectors as (

    select * from {{ ref('int_stock_sectors') }}
    where stock_problem is null

),

list_elements as (

    select
        group_entries.environment,
        group_entries.group_type,
        group_entries.cache_type as source_type,
        group_entries.entry_key as source_key,
        group_entries.cache_entry_id,
        group_entries.cache_type as element_cache_type,
        group_entries.entry_key as element_entry_key,
        listed.ordinality::integer as element_position,
        listed.element

    from group_entries
    cross join
        lateral
        jsonb_array_elements(group_entries.member_list) with ordinality as listed (element, ordinality)
    where group_entries.member_list_path not in ('(stock_metadata)')

),

parsed_list_elements as (

    select
        *,
        case jsonb_typeof(element)
            when 'string' then element #>> '{}'
            when 'object' then coalesce(
                {{ json_text_at('element', 'symbol') }},
                {{ json_text_at('element', 'ticker') }}
            )
        end as raw_symbol,
        case
            when jsonb_typeof(element) <> 'object' then null
            when element ? 'weight'
                then case
                    when jsonb_typeof(element -> 'weight') = 'number' then case
                        when (element ->> 'weight')::numeric between 0 and 1
                            then round((element ->> 'weight')::numeric, 4)
                    end
                end
            when element ? 'weight_pct' then case
                when jsonb_typeof(element -> 'weight_pct') = 'number' then case
                    when (element ->> 'weight_pct')::numeric between 0 and 100
                        then round((element ->> 'weight_pct')::numeric / 100, 4)
                end
            end
        end as weight,
        jsonb_typeof(element) = 'object' and (element ? 'weight' or element ? 'weight_pct')
            as has_weight,
        case
            when jsonb_typeof(element) = 'object'
                then element - 'symbol' - 'ticker' - 'weight' - 'weight_pct'
            else '{}'::jsonb
        end as element_attributes

    from list_elements

),

list_members as (

    select
        environment,
        group_type,
        source_type,
        source_key,
        cache_entry_id,
        element_cache_type,
        element_entry_key,
        element_position,
        element,
        -- only a-z are upper-cased: upper() follows the server's locale ('ıbm' became IBM)
        translate(btrim(raw_symbol), 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')
            as symbol,
        weight,
        has_weight and weight is null as has_unusable_weight,
        jsonb_build_object('position', element_position) || element_attributes as membership_metadata,
        raw_symbol is null as is_unreadable

    from parsed_list_elements

),

sector_members as (

    select
        '{{ migration_environment() }}'::text as environment,
        'SECTOR'::text as group_type,
        'sector_industry_map'::text as source_type,
        stock_sectors.sector_key as source_key,
        sector_entries.cache_entry_id,
        'stock_metadata'::text as element_cache_type,
        stock_sectors.entry_key as element_entry_key,
        null::integer as element_position,
        jsonb_build_object('symbol', stock_sectors.entry_key, 'industry', stock_sectors.industry)
            as element,
        stock_sectors.symbol,
        null::numeric as weight,
        false as has_unusable_weight,
        jsonb_strip_nulls(jsonb_build_object('industry', stock_sectors.industry))
            as membership_metadata,
        false as is_unreadable

    from stock_sectors
    inner join group_entries as sector_entries
        on
            sector_entries.group_type = 'SECTOR'
            and stock_sectors.sector_key = sector_entries.entry_key

),

all_members as (

    select * from list_members
    union all
    select * from sector_members

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

    from all_members

),

final as (

    select
        environment,
        group_type,
        source_type,
        source_key,
        cache_entry_id,
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
