{#-
    Per consumer of the change log in this run's environment: the batch it has applied and
    how many logged changes it has not applied yet.  A consumer behind after a run means the
    run failed before that consumer's model; the next run picks the changes up.
-#}
{%- set environment = migration_environment() -%}

with

watermarks as (

    select * from {{ ref('stg_migration_state__watermarks') }}
    where environment = '{{ environment }}'

),

change_log as (

    select * from {{ ref('stg_migration_state__change_log') }}
    where environment = '{{ environment }}'

),

pending_changes as (

    select
        watermarks.consumer,
        count(change_log.change_batch) as pending_changes,
        max(change_log.change_batch) as latest_pending_batch
    from watermarks
    left join change_log
        on watermarks.applied_batch < change_log.change_batch
    group by watermarks.consumer

),

final as (

    select
        watermarks.environment,
        watermarks.consumer,
        watermarks.applied_batch,
        -- definition_groups.stocks counts int_stock_sectors' batches, not the change log's
        case
            when watermarks.consumer <> 'definition_groups.stocks'
                then pending_changes.pending_changes
        end as pending_changes,
        case
            when watermarks.consumer <> 'definition_groups.stocks'
                then pending_changes.latest_pending_batch
        end as latest_pending_batch

    from watermarks
    inner join pending_changes
        on watermarks.consumer = pending_changes.consumer

)

select * from final
