{#-
    Every cache_type_mappings.member_source is stock_metadata, or places joined by '+' that
    the models know how to read: (value) (a plain array value) or the name of an array of an
    object value (holdings, symbols, stocks, etfs), none twice.  Fails with the mapping row
    and the place it does not know.
-#}

with

member_sources as (

    select
        cache_type,
        member_source
    from {{ ref('cache_type_mappings') }}
    where member_source <> 'stock_metadata'

),

places as (

    select
        member_sources.cache_type,
        member_sources.member_source,
        listed.place,
        count(*) over (partition by member_sources.cache_type, listed.place) as times_named
    from member_sources
    cross join lateral unnest(string_to_array(member_sources.member_source, '+')) as listed (place)

),

final as (

    select
        cache_type,
        member_source,
        place
    from places
    where
        place not in ('(value)', 'holdings', 'symbols', 'stocks', 'etfs')
        or times_named > 1

)

select * from final
