-- An ETF's holdings by the spec's own SQL (its "ETF holdings query": the join of the two
-- tables), by symbol: dbt compile --vars '{etf: SPY}'. etf_holdings reads the packed row.
select group_memberships.symbol
from {{ ref('group_memberships') }} as group_memberships
inner join {{ ref('definition_groups') }} as definition_groups
    on group_memberships.group_id = definition_groups.id
where
    definition_groups.name = '{{ var("etf", "SPY") }}'
    and definition_groups.type = 'ETF'
    and definition_groups.environment = '{{ migration_environment() }}'
order by group_memberships.symbol
