{#-
    Publishing, step 4 (last pre-hook of definition_groups, after the guard): open the run's
    log row, then delete the groups whose cache entry left this environment; their
    memberships go by the foreign key's ON DELETE CASCADE.  Both are logged for the analyst
    models before they go.
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
        {{ doomed_groups_sql() }};

        insert into {{ change_log_relation() }}
            (batch, environment, group_id, group_type, group_name, symbol, change, published_at)
        select {{ batch }}, '{{ migration_environment() }}', doomed_groups.id, doomed_groups.type,
            doomed_groups.name, null, 'delete', {{ run_timestamp() }}
        from doomed_groups
        {%- if memberships is not none %}
        union all
        select {{ batch }}, '{{ migration_environment() }}', doomed_groups.id, doomed_groups.type,
            doomed_groups.name, group_memberships.symbol, 'delete', {{ run_timestamp() }}
        from doomed_groups
        inner join {{ memberships }} as group_memberships
            on group_memberships.group_id = doomed_groups.id
        {%- endif %};

        with doomed_memberships as (
            {%- if memberships is none %}
            select 0 as memberships
            {%- else %}
            select count(*) as memberships
            from {{ memberships }}
            where group_id in (select doomed_groups.id from doomed_groups)
            {%- endif %}
        ),

        deleted_groups as (
            delete from {{ this }}
            where id in (select doomed_groups.id from doomed_groups)
            returning id
        )

        update {{ run_log_relation() }}
        set
            groups_deleted = groups_deleted + (select count(*) from deleted_groups),
            memberships_deleted = memberships_deleted
            + (select doomed_memberships.memberships from doomed_memberships)
        where {{ run_log_key() }}
    {%- endif %}
{% endmacro %}


{% macro doomed_groups_sql() -%}
    {#- The groups of this environment whose source entry is gone: the run deletes them. -#}
    select definition_groups.id, definition_groups.type, definition_groups.name
    from {{ this }} as definition_groups
    where
        definition_groups.environment = '{{ migration_environment() }}'
        -- never a row this migration did not build (a legacy script's insert)
        and {{ is_migrated_group('definition_groups.metadata') }}
        and not exists (
            select 1
            from {{ ref('int_definition_groups') }} as desired_groups
            where {{ group_identity_matches('definition_groups', 'desired_groups') }}
        )
{%- endmacro %}
