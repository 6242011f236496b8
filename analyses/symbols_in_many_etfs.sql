-- Symbols held by at least N ETFs: dbt compile --vars '{min_etfs: 5}'
select
    symbol,
    etf_count,
    etfs
from {{ ref('symbol_memberships') }}
where
    environment = '{{ migration_environment() }}'
    and etf_count >= {{ var("min_etfs", 5) | int }}
order by etf_count desc, symbol asc
