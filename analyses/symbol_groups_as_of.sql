-- The groups a symbol belonged to at a time (UTC):
-- dbt compile --vars '{symbol: NVDA, as_of: "2026-06-01 23:59:59"}'
select
    group_membership_history.group_type,
    group_membership_history.group_name,
    group_membership_history.weight,
    group_membership_history.valid_from as member_since
from {{ ref('group_membership_history') }} as group_membership_history
where
    group_membership_history.environment = '{{ migration_environment() }}'
    and group_membership_history.symbol = '{{ var("symbol", "NVDA") }}'
    and group_membership_history.valid_from <= '{{ var("as_of", "2026-06-01 23:59:59") }}'::timestamp
    and (
        group_membership_history.valid_to is null
        or group_membership_history.valid_to > '{{ var("as_of", "2026-06-01 23:59:59") }}'::timestamp
    )
order by group_membership_history.group_type, group_membership_history.group_name
