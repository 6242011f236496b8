{#-
    A run whose environment has no mapped cache entry at all is almost always a wrong target
    or a mistyped environment in the source (the legacy migration once ran "successfully" on
    nothing).  Fails with the environments that the source does hold.
    It runs after the exceptions model (depends_on), so those are recorded.  The marts do not
    wait for it (they do not depend on the exceptions model): on an empty source they publish
    nothing, and the mass-delete guard stops a run that would empty an environment holding
    groups; this test's failure fails the build.
-#}
{%- set environment = migration_environment() %}
-- depends_on: {{ ref('migration_exceptions') }}

with

cache_entries as (

    select * from {{ ref('stg_legacy__cache_entries') }}

),

cache_type_mappings as (

    select * from {{ ref('cache_type_mappings') }}

),

mapped_entries as (

    select cache_entries.*
    from cache_entries
    inner join cache_type_mappings
        on cache_entries.cache_type = cache_type_mappings.cache_type

),

environments_present as (

    select
        string_agg(format('%L: %s', raw_environment, entries), ', ' order by raw_environment)
            as present
    from (
        select
            raw_environment,
            count(*) as entries
        from mapped_entries
        group by raw_environment
    ) as counted

)

select
    '{{ environment }}' as environment,
    'no mapped cache entry for this environment; the source holds '
    || coalesce(environments_present.present, 'none at all') as detail
from environments_present
where not exists (
    select 1 from mapped_entries
    where mapped_entries.is_known_environment and mapped_entries.environment = '{{ environment }}'
)
