-- Every group a stock belongs to (the spec's "stock memberships query"):
-- dbt compile --vars '{symbol: AAPL}'
select
    definition_groups.type,
    definition_groups.name,
    group_memberships.weight
from {{ ref('group_memberships') }} as group_memberships
inner join {{ ref('definition_groups') }} as definition_groups
    on group_memberships.group_id = definition_groups.id
where
    group_memberships.symbol = '{{ var("symbol", "AAPL") }}'
    and definition_groups.environment = '{{ migration_environment() }}'
order by definition_groups.type, definition_groups.name
