-- An ETF's holdings (the spec's "ETF holdings query"): dbt compile --vars '{etf: SPY}'
select group_memberships.symbol
from {{ ref('group_memberships') }} as group_memberships
inner join {{ ref('definition_groups') }} as definition_groups
    on group_memberships.group_id = definition_groups.id
where
    definition_groups.name = '{{ var("etf", "SPY") }}'
    and definition_groups.type = 'ETF'
    and definition_groups.environment = '{{ migration_environment() }}'
order by group_memberships.symbol
