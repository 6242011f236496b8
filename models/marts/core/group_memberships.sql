{#-
    Written by definition_groups' transaction, not by this model's SQL: after the first build,
    definition_groups' post-hook publish_memberships (macros/publishing/publish_memberships.sql)
    applies each run's membership diff in the groups' transaction, so this model has nothing
    left to write and selects no row.  It owns the table: the first build creates it, with its
    contract (the spec's DDL, the foreign key with ON DELETE CASCADE), from every desired row
    of the groups the ledger says the migration owns.
    Its hooks: serialize_mart_writes and the sequence before; after it, publishing step
      6. record_first_membership_build   the first build's run log counts and stocks watermark
         analyze_memberships             statistics, before the analyst models read the table
    and at the end of the run (on-run-end, dbt_project.yml), step
      7. vacuum_memberships              visibility map
    Steps 1-5, in definition_groups' transaction: models/marts/core/definition_groups.sql.
-#}
{{
    config(
        pre_hook=[
            "{{ serialize_mart_writes() }}",
            "create sequence if not exists {{ id_sequence('group_memberships_id_seq', this.schema) }}",
        ],
        post_hook=["{{ record_first_membership_build() }}", "{{ analyze_memberships() }}"],
    )
}}

with

owned_groups as (

    -- the environment's groups the migration inserted (its ledger), as published
    select
        ledger_groups.group_id as id,
        ledger_groups.group_type,
        ledger_groups.source_type,
        ledger_groups.source_key
    from {{ ref('stg_migration_state__ledger_groups') }} as ledger_groups
    inner join {{ ref('definition_groups') }} as definition_groups
        on ledger_groups.group_id = definition_groups.id
    where ledger_groups.environment = '{{ migration_environment() }}'

),

desired_memberships as (

    select
        owned_groups.id as group_id,
        int_group_memberships.symbol,
        int_group_memberships.weight,
        int_group_memberships.metadata
    from {{ ref('int_group_memberships') }} as int_group_memberships
    inner join owned_groups
        on
            int_group_memberships.group_type = owned_groups.group_type
            and int_group_memberships.source_type = owned_groups.source_type
            and int_group_memberships.source_key = owned_groups.source_key

)

select
    nextval({{ sql_literal(id_sequence('group_memberships_id_seq', this.schema)) }})::integer as id,
    group_id::integer as group_id,
    symbol::varchar(50) as symbol,
    weight::numeric(5, 4) as weight,
    metadata::jsonb as metadata,
    {{ run_timestamp() }} as added_at,
    {{ run_timestamp() }} as updated_at
from desired_memberships
{%- if is_incremental() %}
{#- a constant-false filter: PostgreSQL plans the query but never runs it #}
where false
{%- endif %}
{#- in (group_id, symbol) order: see publish_memberships #}
order by group_id, symbol
