{#-
    Publishing, step 4 (last pre-hook of definition_groups, after the guard): open the run's
    log row, then delete the groups the migration owns whose cache entry left this
    environment; their memberships go by the foreign key's ON DELETE CASCADE.  A group that
    another writer's memberships reference is kept (the cascade would delete their rows): only
    the migration's own members leave it.  Both are logged for the analyst models before they
    go, and the ledger forgets what left the tables.
-#}

{% macro delete_removed_groups() %}
    {#-
        Pre-hook of definition_groups: open the run's log entry, then drop the groups whose
        entry left this environment (their memberships go by cascade), counting both and
        logging them for the analyst models.
    -#}
    {{ open_run_log_entry() }};
    {%- if is_incremental() and execute %}
        {%- set memberships = memberships_relation() %}
        {%- set batch = run_query("select nextval('" ~ batch_sequence() ~ "')").columns[0].values()[0] %}
        create temporary table groups_before_run on commit drop as
        select definition_groups.id, definition_groups.name, definition_groups.type
        from {{ this }} as definition_groups
        where definition_groups.environment = '{{ migration_environment() }}';

        create temporary table doomed_groups on commit drop as
        {{ doomed_groups_sql(memberships) }};

        insert into {{ change_log_relation() }}
            (batch, environment, group_id, group_type, group_name, symbol, change, published_at)
        select {{ batch }}, '{{ migration_environment() }}', doomed_groups.id, doomed_groups.type,
            doomed_groups.name, null, 'delete', {{ run_timestamp() }}
        from doomed_groups
        where not doomed_groups.has_foreign_members
        {%- if memberships is not none %}
        union all
        select {{ batch }}, '{{ migration_environment() }}', doomed_groups.id, doomed_groups.type,
            doomed_groups.name, group_memberships.symbol, 'delete', {{ run_timestamp() }}
        from doomed_groups
        inner join {{ memberships }} as group_memberships
            on group_memberships.group_id = doomed_groups.id
        where {{ is_owned_membership('group_memberships.id') }}
        {%- endif %};

        {#- A group that another writer's memberships still reference stays (ON DELETE CASCADE
            would delete their rows): only the migration's own members leave it. #}
        with doomed_memberships as (
            {%- if memberships is none %}
            select 0 as memberships
            {%- else %}
            select count(*) as memberships
            from {{ memberships }} as group_memberships
            where
                group_memberships.group_id in (select doomed_groups.id from doomed_groups)
                and {{ is_owned_membership('group_memberships.id') }}
            {%- endif %}
        ),

        {%- if memberships is not none %}

        deleted_memberships as (
            delete from {{ memberships }} as group_memberships
            where
                group_memberships.group_id in (
                    select doomed_groups.id from doomed_groups where doomed_groups.has_foreign_members
                )
                and {{ is_owned_membership('group_memberships.id') }}
        ),

        {%- endif %}

        deleted_groups as (
            delete from {{ this }}
            where id in (select doomed_groups.id from doomed_groups where not doomed_groups.has_foreign_members)
            returning id
        )

        update {{ run_log_relation() }}
        set
            groups_deleted = groups_deleted + (select count(*) from deleted_groups),
            memberships_deleted = memberships_deleted
            + (select doomed_memberships.memberships from doomed_memberships)
        where {{ run_log_key() }};

        {{ forget_removed_groups() }}
    {%- endif %}
{% endmacro %}


{% macro doomed_groups_sql(memberships) -%}
    {#- This environment's groups that the migration owns (the ledger) whose source entry is
        gone: the run deletes them, or, when another writer's memberships reference one
        (has_foreign_members), only the migration's own members of it. -#}
    select
        owned_groups.id,
        owned_groups.type,
        owned_groups.name,
        {%- if memberships is none %}
        false as has_foreign_members
        {%- else %}
        exists (
            select from {{ memberships }} as group_memberships
            where
                group_memberships.group_id = owned_groups.id
                and not {{ is_owned_membership('group_memberships.id') }}
        ) as has_foreign_members
        {%- endif %}
    from ({{ owned_groups_sql(this) }}) as owned_groups
    where
        owned_groups.is_present
        and not exists (
            select 1
            from {{ ref('int_definition_groups') }} as desired_groups
            where {{ group_identity_matches('owned_groups', 'desired_groups') }}
        )
{%- endmacro %}


{% macro forget_removed_groups() -%}
    {#- The ledger forgets the groups this run deleted, and those another writer deleted whose
        entry is gone too; and the memberships that are no longer in the table. -#}
    delete from {{ ledger_memberships_relation() }} as ledger_memberships
    where
        ledger_memberships.group_id in (select doomed_groups.id from doomed_groups)
        {%- if memberships_relation() is not none %}
        and not exists (
            select from {{ memberships_relation() }} as group_memberships
            where group_memberships.id = ledger_memberships.membership_id
        )
        {%- endif %};

    delete from {{ ledger_groups_relation() }} as ledger
    where
        ledger.environment = '{{ migration_environment() }}'
        and not exists (select from {{ this }} as definition_groups where definition_groups.id = ledger.group_id)
        and not exists (
            select 1
            from {{ ref('int_definition_groups') }} as desired_groups
            where
                desired_groups.type = ledger.group_type
                and desired_groups.source_type = ledger.source_type
                and desired_groups.source_key = ledger.source_key
        )
{%- endmacro %}
