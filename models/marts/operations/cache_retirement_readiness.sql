{#- Per cache type: can this environment's legacy entries be archived yet? -#}

with

reconciliation as (

    select * from {{ ref('cache_entry_reconciliation') }}

),

per_type as (

    select
        environment,
        cache_type,
        count(*) as entries,
        count(*) filter (where status = 'represented') as represented_entries,
        count(*) filter (where status = 'explained') as explained_entries,
        count(*) filter (where status = 'unexplained') as unexplained_entries,
        count(*) filter (where status = 'not_migrated') as not_migrated_entries
    from reconciliation
    group by environment, cache_type

),

final as (

    select
        *,
        unexplained_entries = 0 and not_migrated_entries = 0 as ready_to_archive,
        case
            when not_migrated_entries > 0
                then 'not migrated by this project: the legacy application still needs it'
            when unexplained_entries > 0
                then
                    unexplained_entries || ' entries differ without an explanation: '
                    || 'see cache_entry_reconciliation'
            when explained_entries > 0
                then 'ready: ' || explained_entries || ' entries left out for recorded reasons'
            else 'ready: every entry is represented'
        end as verdict
    from per_type

)

select * from final
