-- A group's additions, removals and weight changes between two times (UTC):
-- dbt compile --vars '{etf: SPY, since: "2026-03-01", until: "2026-06-01 23:59:59"}'
with

group_history as (

    select * from {{ ref('group_membership_history') }}
    where
        environment = '{{ migration_environment() }}'
        and group_type = 'ETF'
        and group_name = '{{ var("etf", "SPY") }}'

),

members_since as (

    select * from group_history
    where
        valid_from <= '{{ var("since", "2026-03-01") }}'::timestamp
        and (valid_to is null or valid_to > '{{ var("since", "2026-03-01") }}'::timestamp)

),

members_until as (

    select * from group_history
    where
        valid_from <= '{{ var("until", "2026-06-01 23:59:59") }}'::timestamp
        and (valid_to is null or valid_to > '{{ var("until", "2026-06-01 23:59:59") }}'::timestamp)

)

select
    case
        when members_since.symbol is null then 'added'
        when members_until.symbol is null then 'removed'
        else 'reweighted'
    end as change,
    coalesce(members_until.symbol, members_since.symbol) as symbol,
    members_since.weight as weight_before,
    members_until.weight as weight_after
from members_since
full outer join members_until
    on members_since.symbol = members_until.symbol
where
    members_since.symbol is null
    or members_until.symbol is null
    or members_since.weight is distinct from members_until.weight
order by change, symbol
