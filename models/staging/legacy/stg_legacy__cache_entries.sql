with

source as (

    -- xmin, the id of the transaction that wrote the row version, is not part of select *
    select
        *,
        xmin as row_xmin
    from {{ source('legacy', 'cache_entries') }}

),

renamed as (

    select
        id as cache_entry_id,
        -- look-alike spellings (ETF_HOLDINGS, 'etf_holdings ') read as the mapped type; only
        -- A-Z are lower-cased, so no locale can turn another letter into a mapped type
        -- (the column's own type, varchar(50): the incremental models that store it compare
        -- their column types on every run)
        translate(
            btrim(type, E' \t\r\n'), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'
        )::varchar(50) as cache_type,
        type as raw_cache_type,
        type <> translate(
            btrim(type, E' \t\r\n'), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'
        ) as is_type_respelled,
        key as entry_key,
        name as entry_name,
        value as entry_value,
        jsonb_typeof(value) as entry_value_json_type,
        md5(value::text) as content_checksum,
        row_xmin::text::bigint as source_row_version,
        description as entry_description,
        environment as raw_environment,
        upper(btrim(environment, E' \t\r\n')) as environment,
        upper(btrim(environment, E' \t\r\n')) in {{ environments_sql() }}
            as is_known_environment,
        environment <> upper(btrim(environment, E' \t\r\n')) as is_environment_respelled,
        (created_at at time zone 'UTC') as created_at,
        (updated_at at time zone 'UTC') as updated_at,
        (coalesce(updated_at, created_at) at time zone 'UTC') as source_updated_at

    from source

)

select * from renamed
