with

source as (

    select * from {{ source('migration_state', 'migration_ledger_groups') }}

),

renamed as (

    select
        group_id,
        environment,
        group_type,
        source_type,
        source_key,
        recorded_at

    from source

)

select * from renamed
