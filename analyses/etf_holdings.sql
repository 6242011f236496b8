-- An ETF's holdings in source order, with weights and positions, from its one packed row in
-- group_holdings (as fast as the JSONB cache row): dbt compile --vars '{etf: SPY}'.
-- `select symbols, weights from group_holdings where ...` gives the same as two arrays.
select
    holdings.symbol,
    holdings.weight,
    holdings.position
from {{ ref('group_holdings') }} as group_holdings
cross join
    lateral unnest(
        group_holdings.symbols, group_holdings.weights, group_holdings.positions
    ) with ordinality as holdings (symbol, weight, position, place)
where
    group_holdings.environment = '{{ migration_environment() }}'
    and group_holdings.type = 'ETF'
    and group_holdings.name = '{{ var("etf", "SPY") }}'
order by holdings.place
