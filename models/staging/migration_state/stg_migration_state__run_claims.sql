with

source as (

    select * from {{ source('migration_state', 'migration_run_claims') }}

),

renamed as (

    select
        environment,
        invocation_id as claim_invocation_id,
        claimed_at,
        finished_at as claim_finished_at

    from source

)

select * from renamed
