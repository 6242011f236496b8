with

source as (

    select * from {{ source('migration_state', 'migration_watermarks') }}

),

renamed as (

    select
        environment,
        consumer,
        batch as applied_batch

    from source

)

select * from renamed
