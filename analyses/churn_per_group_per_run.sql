-- Churn per group and run: members added and removed by each publishing run, per group
-- (a reweight or a rename counts as neither; the members of a group created or deleted count).
with

group_history as (

    select * from {{ ref('group_membership_history') }}
    where environment = '{{ migration_environment() }}'

),

history_start as (

    select min(valid_from) as started_at from group_history

),

openings as (

    select
        group_id,
        symbol,
        valid_from as changed_at
    from group_history
    where valid_from > (select history_start.started_at from history_start)

),

closings as (

    select
        group_id,
        symbol,
        valid_to as changed_at
    from group_history
    where valid_to is not null

),

additions as (

    -- opened without a period of the same membership ending at the same run: a new member
    select
        openings.group_id,
        openings.changed_at,
        count(*) as added
    from openings
    left join closings
        on
            openings.group_id = closings.group_id
            and openings.symbol = closings.symbol
            and openings.changed_at = closings.changed_at
    where closings.group_id is null
    group by openings.group_id, openings.changed_at

),

removals as (

    select
        closings.group_id,
        closings.changed_at,
        count(*) as removed
    from closings
    left join openings
        on
            closings.group_id = openings.group_id
            and closings.symbol = openings.symbol
            and closings.changed_at = openings.changed_at
    where openings.group_id is null
    group by closings.group_id, closings.changed_at

),

group_names as (

    select distinct on (group_id)
        group_id,
        group_type,
        group_name
    from group_history
    order by group_id asc, valid_from desc

)

select
    group_names.group_type,
    group_names.group_name,
    coalesce(additions.changed_at, removals.changed_at) as run_started_at,
    coalesce(additions.added, 0) as added,
    coalesce(removals.removed, 0) as removed
from additions
full outer join removals
    on additions.group_id = removals.group_id and additions.changed_at = removals.changed_at
inner join group_names
    on coalesce(additions.group_id, removals.group_id) = group_names.group_id
order by run_started_at, group_names.group_type, group_names.group_name
