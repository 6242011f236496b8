with

source as (

    select * from {{ source('migration_state', 'migration_run_log') }}

),

renamed as (

    select
        invocation_id,
        environment,
        run_started_at,
        finished_at,
        groups_inserted,
        groups_updated,
        groups_deleted,
        memberships_inserted,
        memberships_updated,
        memberships_deleted,
        exception_errors,
        exception_warnings

    from source

)

select * from renamed
