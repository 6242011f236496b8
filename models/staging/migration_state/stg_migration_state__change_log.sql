with

source as (

    select * from {{ source('migration_state', 'migration_change_log') }}

),

renamed as (

    select
        batch as change_batch,
        environment,
        group_id,
        group_type,
        group_name,
        symbol,
        change as change_type,
        published_at

    from source

)

select * from renamed
