-- An ETF's holdings as of a time (UTC):
-- dbt compile --vars '{etf: SPY, as_of: "2026-06-01 23:59:59"}'
select
    group_membership_history.symbol,
    group_membership_history.weight,
    group_membership_history.position,
    group_membership_history.valid_from as member_since
from {{ ref('group_membership_history') }} as group_membership_history
where
    group_membership_history.environment = '{{ migration_environment() }}'
    and group_membership_history.group_type = 'ETF'
    and group_membership_history.group_name = '{{ var("etf", "SPY") }}'
    and group_membership_history.valid_from <= '{{ var("as_of", "2026-06-01 23:59:59") }}'::timestamp
    and (
        group_membership_history.valid_to is null
        or group_membership_history.valid_to > '{{ var("as_of", "2026-06-01 23:59:59") }}'::timestamp
    )
order by group_membership_history.position nulls last, group_membership_history.symbol
