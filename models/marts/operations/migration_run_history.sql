{#-
    One row per run of this run's environment that published: what it changed and the
    exceptions it recorded (the run log), and whether it still holds the environment's claim.
-#}
{%- set environment = migration_environment() -%}

with

run_log as (

    select * from {{ ref('stg_migration_state__run_log') }}
    where environment = '{{ environment }}'

),

run_claims as (

    select * from {{ ref('stg_migration_state__run_claims') }}
    where environment = '{{ environment }}'

),

final as (

    select
        run_log.invocation_id,
        run_log.environment,
        run_log.run_started_at,
        run_log.finished_at,
        run_log.groups_inserted,
        run_log.groups_updated,
        run_log.groups_deleted,
        run_log.memberships_inserted,
        run_log.memberships_updated,
        run_log.memberships_deleted,
        run_log.exception_errors,
        run_log.exception_warnings,
        coalesce(
            run_claims.claim_invocation_id is not null and run_claims.claim_finished_at is null,
            false
        ) as holds_claim

    from run_log
    left join run_claims
        on run_log.invocation_id = run_claims.claim_invocation_id

)

select * from final
