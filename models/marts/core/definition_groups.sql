{#-
    How definition_groups and group_memberships are written: both in this model's transaction,
    so a reader never sees a group half-updated (a new ETF with no members, or a changed ETF
    with its old members).  Two models would commit in two transactions, so the membership
    diff is applied by this model's post-hook; group_memberships only creates its table.

    In this model's transaction, in order (one macro file each, under macros/publishing/):
      1. serialize_mart_writes   the marts' advisory lock: one writer at a time
      2. the id sequences, created when missing (ids as SERIAL would give them)
      3. adopt_previous_memberships  once per environment: the ledger takes over the members
                                 an earlier release built (its groups: int_group_entries'
                                 pre-hook; macros/run_state/ledger.sql)
         guard_mass_delete       refuse a run that would delete too many groups (nothing written yet)
      4. delete_removed_groups   open the run log row; delete groups whose entry left (memberships
                                 by ON DELETE CASCADE); log them in migration_change_log
      -  this model's SQL        the new and changed groups (ids kept by group_identity_matches,
                                 through the ledger); dbt's incremental merge (unique_key id)
                                 writes them
      -  record_new_groups       the groups the merge inserted go into the ledger
      5. publish_memberships     reads the membership diff once (the model
                                 int_group_membership_changes, a view evaluated here), the guard's
                                 membership half, delete / update / insert in group_memberships,
                                 ledger, change log, run log, stocks watermark
      -  analyze                 fresh statistics of the groups and their ledger for the models
                                 that follow (group_memberships joins both)
    Then group_memberships, in its own transaction: steps 6 and 7, in
    models/marts/core/group_memberships.sql.
    Why hooks and not a custom materialization: docs/architecture.md.
-#}
{{
    config(
        pre_hook=[
            "{{ serialize_mart_writes() }}",
            "create sequence if not exists {{ id_sequence('definition_groups_id_seq', this.schema) }}",
            "create sequence if not exists {{ id_sequence('group_memberships_id_seq', this.schema) }}",
            "{{ adopt_previous_memberships() }}",
            "{{ guard_mass_delete() }}",
            "{{ delete_removed_groups() }}",
        ],
        post_hook=[
            "{{ record_new_groups() }}",
            "{{ publish_memberships() }}",
            "analyze {{ this }}",
            "analyze {{ ledger_groups_relation() }}",
        ],
    )
}}
{%- set environment = migration_environment() %}

with

desired_groups as (

    select * from {{ ref('int_definition_groups') }}

),

existing_groups as (

    -- the groups this migration owns (the ledger), whatever another writer did to their rows
    {%- if is_incremental() %}
    select
        ledger.group_id as id,
        ledger.group_type as type,
        ledger.source_type,
        ledger.source_key,
        definition_groups.id is not null as is_present,
        definition_groups.created_at,
        definition_groups.type as row_type,
        definition_groups.environment as row_environment,
        definition_groups.name,
        definition_groups.description,
        definition_groups.metadata,
        definition_groups.liquidity_filter,
        definition_groups.last_update
    from {{ ledger_groups_relation() }} as ledger
    left join {{ this }} as definition_groups
        on ledger.group_id = definition_groups.id
    where ledger.environment = '{{ environment }}'
    {%- else %}
        select
            null::integer as id,
            null::varchar(50) as type,
            null::text as source_type,
            null::text as source_key,
            null::boolean as is_present,
            null::timestamp as created_at,
            null::varchar(50) as row_type,
            null::varchar(10) as row_environment,
            null::varchar(100) as name,
            null::text as description,
            null::jsonb as metadata,
            null::jsonb as liquidity_filter,
            null::timestamp as last_update
        where false
    {%- endif %}

),

changed_groups as (

    select
        coalesce(
            existing_groups.id,
            nextval({{ sql_literal(id_sequence('definition_groups_id_seq', this.schema)) }})
        )::integer as id,
        desired_groups.name::varchar(100) as name,
        desired_groups.type::varchar(50) as type,
        desired_groups.description::text as description,
        desired_groups.metadata::jsonb as metadata,
        desired_groups.liquidity_filter::jsonb as liquidity_filter,
        desired_groups.environment::varchar(10) as environment,
        coalesce(existing_groups.created_at, {{ run_timestamp() }})::timestamp as created_at,
        {{ run_timestamp() }} as updated_at,
        desired_groups.last_update::timestamp as last_update

    from desired_groups
    left join existing_groups
        on {{ group_identity_matches('existing_groups', 'desired_groups') }}
    where
        existing_groups.id is null
        -- another writer deleted or changed the row: the cache is the source of truth for it
        or not existing_groups.is_present
        or (
            existing_groups.row_type,
            existing_groups.row_environment,
            existing_groups.name,
            existing_groups.description,
            existing_groups.metadata,
            existing_groups.liquidity_filter,
            existing_groups.last_update
        ) is distinct from (
            desired_groups.type,
            desired_groups.environment,
            desired_groups.name,
            desired_groups.description,
            desired_groups.metadata,
            desired_groups.liquidity_filter,
            desired_groups.last_update
        )

)

select * from changed_groups
