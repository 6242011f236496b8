with

source as (

    select * from {{ source('migration_state', 'migration_ledger_memberships') }}

),

renamed as (

    select
        membership_id,
        group_id,
        recorded_at

    from source

)

select * from renamed
