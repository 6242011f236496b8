-- Groups without a single member (an ETF or theme here usually means a broken source entry).
select
    type,
    name,
    source_type,
    source_key,
    last_update
from {{ ref('group_summary') }}
where
    environment = '{{ migration_environment() }}'
    and member_count = 0
order by type, name
