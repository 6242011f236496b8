-- Per-sector counts of distinct symbols (the spec's "sector filter query").
select
    definition_groups.name as sector,
    count(distinct group_memberships.symbol) as symbols
from {{ ref('definition_groups') }} as definition_groups
inner join {{ ref('group_memberships') }} as group_memberships
    on definition_groups.id = group_memberships.group_id
where
    definition_groups.type = 'SECTOR'
    and definition_groups.environment = '{{ migration_environment() }}'
group by definition_groups.name
order by symbols desc
