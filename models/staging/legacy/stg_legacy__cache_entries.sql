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
        -- look-alike spellings (ETF_HOLDINGS, 'etf_holdings ') read as the mapped type, and
        -- ' prod', E'Prod\t' as PROD (macros/sql_helpers/normalisation.sql, the one rule; the
        -- harness's backup and restore read the same macro); the type keeps the column's own
        -- type, varchar(50): the incremental models that store it compare their column types
        {{ normalised_cache_type('type') }}::varchar(50) as cache_type,
        type as raw_cache_type,
        type <> {{ normalised_cache_type('type') }} as is_type_respelled,
        key as entry_key,
        name as entry_name,
        value as entry_value,
        jsonb_typeof(value) as entry_value_json_type,
        md5(value::text) as content_checksum,
        row_xmin::text::bigint as source_row_version,
        description as entry_description,
        environment as raw_environment,
        {{ normalised_environment('environment') }} as environment,
        {{ normalised_environment('environment') }} in {{ environments_sql() }}
            as is_known_environment,
        environment <> {{ normalised_environment('environment') }} as is_environment_respelled,
        (created_at at time zone 'UTC') as created_at,
        (updated_at at time zone 'UTC') as updated_at,
        (coalesce(updated_at, created_at) at time zone 'UTC') as source_updated_at

    from source

)

select * from renamed
