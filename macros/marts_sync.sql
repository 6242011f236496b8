{#-
    The publishing logic shared by the two contract tables.  definition_groups writes its own
    changes and, in its post-hook, the membership diff, inside one transaction, so readers
    never see a group with a half-applied member list.  group_memberships then converges
    (zero rows in steady state) and creates its table on the first build.
-#}

{% macro serialize_mart_writes() %}
    {#- Two runs never write the contract tables at the same time (held until commit). -#}
    select pg_advisory_xact_lock(hashtext('sprint59_migration.marts'))
{% endmacro %}


{% macro group_identity_matches(group_alias, desired_alias) -%}
    {{ group_alias }}.type = {{ desired_alias }}.type
    and {{ group_alias }}.metadata -> 'source' ->> 'type' = {{ desired_alias }}.source_type
    and {{ group_alias }}.metadata -> 'source' ->> 'key' = {{ desired_alias }}.source_key
{%- endmacro %}


{% macro memberships_relation() %}
    {{ return(adapter.get_relation(this.database, this.schema, 'group_memberships')) }}
{% endmacro %}


{% macro desired_memberships_sql(groups_relation) -%}
    select
        definition_groups.id as group_id,
        int_group_memberships.symbol,
        int_group_memberships.weight,
        int_group_memberships.metadata
    from {{ ref('int_group_memberships') }} as int_group_memberships
    inner join {{ groups_relation }} as definition_groups
        on
            definition_groups.environment = '{{ migration_environment() }}'
            and definition_groups.type = int_group_memberships.group_type
            and definition_groups.metadata -> 'source' ->> 'type' = int_group_memberships.source_type
            and definition_groups.metadata -> 'source' ->> 'key' = int_group_memberships.source_key
{%- endmacro %}


{% macro existing_memberships_sql(memberships_relation, groups_relation) -%}
    select group_memberships.*
    from {{ memberships_relation }} as group_memberships
    inner join {{ groups_relation }} as definition_groups
        on group_memberships.group_id = definition_groups.id
    where
        definition_groups.environment = '{{ migration_environment() }}'
        and definition_groups.metadata ? 'source'
{%- endmacro %}


{% macro membership_changes_sql(memberships_relation, groups_relation, sequence_name) -%}
    {#- Rows to insert (new id) or update (existing id) so the table matches the desired set. -#}
    with

    desired_memberships as (
        {{ desired_memberships_sql(groups_relation) | indent(8) }}
    ),

    existing_memberships as (
        {%- if memberships_relation is none %}
        select
            null::integer as id,
            null::integer as group_id,
            null::varchar(50) as symbol,
            null::numeric(5, 4) as weight,
            null::jsonb as metadata,
            null::timestamp as added_at
        where false
        {%- else %}
        {{ existing_memberships_sql(memberships_relation, groups_relation) | indent(8) }}
        {%- endif %}
    ),

    changed_memberships as (
        select
            coalesce(existing_memberships.id, nextval('{{ sequence_name }}'))::integer as id,
            desired_memberships.group_id::integer as group_id,
            desired_memberships.symbol::varchar(50) as symbol,
            desired_memberships.weight::numeric(5, 4) as weight,
            desired_memberships.metadata::jsonb as metadata,
            coalesce(existing_memberships.added_at, {{ run_timestamp() }})::timestamp as added_at,
            {{ run_timestamp() }} as updated_at
        from desired_memberships
        left join existing_memberships
            on
                desired_memberships.group_id = existing_memberships.group_id
                and desired_memberships.symbol = existing_memberships.symbol
        where
            existing_memberships.id is null
            or (existing_memberships.weight, existing_memberships.metadata)
            is distinct from (desired_memberships.weight, desired_memberships.metadata)
    )

    {#- Written in (group_id, symbol) order: the sector query's count(distinct) over a join
        reads far less of the table when a group's rows sit together (4x at scale 10). #}
    select * from changed_memberships
    order by group_id, symbol
{%- endmacro %}


{% macro delete_stale_memberships_sql(memberships_relation, groups_relation) -%}
    delete from {{ memberships_relation }} as group_memberships
    using {{ groups_relation }} as definition_groups
    where
        group_memberships.group_id = definition_groups.id
        and definition_groups.environment = '{{ migration_environment() }}'
        and definition_groups.metadata ? 'source'
        and not exists (
            select 1
            from ({{ desired_memberships_sql(groups_relation) }}) as desired_memberships
            where
                desired_memberships.group_id = group_memberships.group_id
                and desired_memberships.symbol = group_memberships.symbol
        )
{%- endmacro %}


{% macro membership_sequence(memberships_schema) -%}
    {{ memberships_schema }}.group_memberships_id_seq
{%- endmacro %}


{% macro publish_memberships() %}
    {#-
        Post-hook of definition_groups: apply the membership diff in the groups' transaction,
        and log what the run changed.
    -#}
    {%- set memberships = memberships_relation() -%}
    {%- if memberships is not none -%}
        with deleted_memberships as (
            {{ delete_stale_memberships_sql(memberships, this) }}
            returning 1
        )
        update {{ run_log_relation() }}
        set memberships_deleted = memberships_deleted + (select count(*) from deleted_memberships)
        where {{ run_log_key() }};
        merge into {{ memberships }} as target
        using (
            {{ membership_changes_sql(memberships, this, membership_sequence(memberships.schema)) }}
        ) as changes
        on target.id = changes.id
        when matched then update set
            weight = changes.weight,
            metadata = changes.metadata,
            updated_at = changes.updated_at
        when not matched then insert (id, group_id, symbol, weight, metadata, added_at, updated_at)
        values (
            changes.id, changes.group_id, changes.symbol, changes.weight, changes.metadata,
            changes.added_at, changes.updated_at
        );
        analyze {{ memberships }};
    {%- endif %}
    {{ record_run_counts(this, memberships) }}
{% endmacro %}


{% macro converge_memberships_pre_hook() %}
    {#- Pre-hook of group_memberships: delete what is stale (nothing in steady state), logged. -#}
    {%- if is_incremental() -%}
        with deleted_memberships as (
            {{ delete_stale_memberships_sql(this, ref('definition_groups')) }}
            returning 1
        )
        update {{ run_log_relation() }}
        set memberships_deleted = memberships_deleted + (select count(*) from deleted_memberships)
        where {{ run_log_key() }}
    {%- else -%}
        select 1 /* first build: nothing to delete */
    {%- endif -%}
{% endmacro %}


{% macro delete_removed_groups() %}
    {#-
        Pre-hook of definition_groups: open the run's log entry, then drop the groups whose
        entry left this environment (their memberships go by cascade), counting both.
    -#}
    {{ open_run_log_entry() }};
    {%- if is_incremental() %}
        {%- set memberships = memberships_relation() %}
        with doomed_groups as (
            select definition_groups.id
            from {{ this }} as definition_groups
            where
                definition_groups.environment = '{{ migration_environment() }}'
                and definition_groups.metadata ? 'source'
                and not exists (
                    select 1
                    from {{ ref('int_definition_groups') }} as desired_groups
                    where {{ group_identity_matches('definition_groups', 'desired_groups') }}
                )
        ),

        doomed_memberships as (
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
