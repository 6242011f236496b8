{#-
    The ledger: which rows of definition_groups and group_memberships this migration wrote
    (docs/design.md, "Other writers").  Other writers share the two tables (the application's
    loaders, legacy scripts, an analyst fixing a group by hand), so ownership is never read
    from a column anyone can write (metadata.source is provenance for readers): it is the
    migration's own record, next to the run log in the target schema.

    - migration_ledger_groups: every definition_groups id the migration inserted, with the
      identity it was built for (environment, group type, source type, source key).  A run
      finds "its" group for an entry here, and only here.
    - migration_ledger_memberships: every group_memberships id the migration inserted.
    - migration_ledger_environments: one row per environment whose ledger exists; a database
      built before the ledger gets it once, on the environment's first build after the
      upgrade (adopt_previous_groups, adopt_previous_memberships).

    Every statement that deletes or updates rows of the two tables is limited to ledger rows;
    the publishing hooks write the ledger in the same transaction as the rows it records.
-#}

{% macro ledger_groups_relation() -%}
    {{ adapter.quote(target.schema) }}.migration_ledger_groups
{%- endmacro %}


{% macro ledger_memberships_relation() -%}
    {{ adapter.quote(target.schema) }}.migration_ledger_memberships
{%- endmacro %}


{% macro ledger_environments_relation() -%}
    {{ adapter.quote(target.schema) }}.migration_ledger_environments
{%- endmacro %}


{% macro create_ledger() %}
    {#- The ledger's three tables (ensure_state_tables creates them when missing). -#}
    create table if not exists {{ ledger_groups_relation() }} (
        group_id integer primary key,
        environment varchar(10) not null,
        group_type varchar(50) not null,
        source_type varchar(50) not null,
        source_key varchar(100) not null,
        recorded_at timestamp without time zone not null,
        unique (environment, group_type, source_type, source_key)
    );
    comment on table {{ ledger_groups_relation() }} is
        'Every definition_groups id the migration inserted, with the cache entry identity it was built for; rows not listed here belong to other writers and are never changed or deleted.';
    create table if not exists {{ ledger_memberships_relation() }} (
        membership_id integer primary key,
        group_id integer not null,
        recorded_at timestamp without time zone not null
    );
    create index if not exists migration_ledger_memberships_group
        on {{ ledger_memberships_relation() }} (group_id);
    comment on table {{ ledger_memberships_relation() }} is
        'Every group_memberships id the migration inserted; rows not listed here belong to other writers and are never changed or deleted.';
    create table if not exists {{ ledger_environments_relation() }} (
        environment varchar(10) primary key,
        started_at timestamp without time zone not null,
        adopted_groups integer not null,
        adopted_memberships integer
    );
    comment on table {{ ledger_environments_relation() }} is
        'Environments whose ledger exists; adopted_* count the rows a build made before the ledger existed that it took over on upgrade.';
{% endmacro %}


{% macro owned_groups_sql(groups_relation) -%}
    {#- This environment's ledger groups, with the identity they were built for, joined to
        their row (the row's columns are NULL when another writer deleted it). -#}
    select
        ledger.group_id as id,
        ledger.group_type as type,
        ledger.source_type,
        ledger.source_key,
        definition_groups.id is not null as is_present,
        definition_groups.name,
        definition_groups.environment,
        definition_groups.created_at,
        definition_groups.updated_at
    from {{ ledger_groups_relation() }} as ledger
    left join {{ groups_relation }} as definition_groups
        on ledger.group_id = definition_groups.id
    where ledger.environment = '{{ migration_environment() }}'
{%- endmacro %}


{% macro is_owned_membership(membership_id) -%}
    exists (
        select from {{ ledger_memberships_relation() }} as ledger_memberships
        where ledger_memberships.membership_id = {{ membership_id }}
    )
{%- endmacro %}


{% macro adopt_previous_groups() %}
    {#-
        Pre-hook of int_group_entries (before any name is decided): on the environment's first
        build since the ledger exists, take over the groups an earlier release of this project
        built, known by their metadata.source naming an entry of the cache (type and key, as
        the release recorded them), at most one per identity (the lowest id: a copy made later
        is someone else's).  Every other row stays foreign.  Their memberships follow in
        definition_groups' pre-hook (adopt_previous_memberships), once the desired members are
        known.  Runs once per environment: afterwards the ledger alone decides.
    -#}
    {%- set environment = migration_environment() -%}
    {%- set groups = published_groups_relation() -%}
    {%- if not execute -%}
        {{ return('select 1') }}
    {%- endif -%}
    {%- set started = run_query(
        "select count(*) from " ~ ledger_environments_relation() ~ " where environment = '" ~ environment ~ "'"
    ).columns[0].values()[0] | int -%}
    {%- if started > 0 -%}
        {{ return('select 1 /* the ledger of this environment exists */') }}
    {%- endif -%}
    {%- if groups is none -%}
        {{ return(
            "insert into " ~ ledger_environments_relation()
            ~ " (environment, started_at, adopted_groups, adopted_memberships)"
            ~ " values ('" ~ environment ~ "', " ~ run_timestamp() ~ ", 0, 0)"
        ) }}
    {%- endif %}
    with adopted_groups as (
        insert into {{ ledger_groups_relation() }}
            (group_id, environment, group_type, source_type, source_key, recorded_at)
        select distinct on (entries.group_type, entries.cache_type, entries.entry_key)
            definition_groups.id, '{{ environment }}', entries.group_type,
            entries.cache_type, entries.entry_key, {{ run_timestamp() }}
        from {{ groups }} as definition_groups
        inner join {{ ref('int_group_entry_contents') }} as entries
            on
                definition_groups.type = entries.group_type
                and definition_groups.metadata -> 'source' ->> 'type' = entries.cache_type
                and definition_groups.metadata -> 'source' ->> 'key' = entries.entry_key
        where
            definition_groups.environment = '{{ environment }}'
            and not exists (
                select from {{ ledger_groups_relation() }} as ledger
                where ledger.group_id = definition_groups.id
            )
        order by entries.group_type, entries.cache_type, entries.entry_key, definition_groups.id
        on conflict do nothing
        returning group_id
    )

    insert into {{ ledger_environments_relation() }} (environment, started_at, adopted_groups, adopted_memberships)
    select '{{ environment }}', {{ run_timestamp() }}, count(*), null
    from adopted_groups
{% endmacro %}


{% macro adopt_previous_memberships() %}
    {#-
        Pre-hook of definition_groups, before the guard: the memberships of the groups
        adopt_previous_groups took over that stand for a current source element (a member
        another writer added to such a group stays theirs).  Once: the environment's row in
        migration_ledger_environments then holds the count.
    -#}
    {%- set environment = migration_environment() -%}
    {%- set memberships = memberships_relation() -%}
    {#- ref'd before the parse-time return, so that parsing records the dependency -#}
    {%- set desired_memberships = ref('int_group_memberships') -%}
    {%- if not execute -%}
        {{ return('select 1') }}
    {%- endif -%}
    {%- set pending = run_query(
        "select count(*) from " ~ ledger_environments_relation()
        ~ " where environment = '" ~ environment ~ "' and adopted_memberships is null"
    ).columns[0].values()[0] | int -%}
    {%- if pending == 0 -%}
        {{ return('select 1 /* no adopted group waits for its memberships */') }}
    {%- endif %}
    with adopted_memberships as (
        {%- if memberships is none %}
        select null::integer as membership_id where false
        {%- else %}
        insert into {{ ledger_memberships_relation() }} (membership_id, group_id, recorded_at)
        select group_memberships.id, group_memberships.group_id, {{ run_timestamp() }}
        from {{ ledger_groups_relation() }} as ledger_groups
        inner join {{ memberships }} as group_memberships
            on ledger_groups.group_id = group_memberships.group_id
        where
            ledger_groups.environment = '{{ environment }}'
            and exists (
                select from {{ desired_memberships }} as desired_memberships
                where
                    desired_memberships.group_type = ledger_groups.group_type
                    and desired_memberships.source_type = ledger_groups.source_type
                    and desired_memberships.source_key = ledger_groups.source_key
                    and desired_memberships.symbol = group_memberships.symbol
            )
        on conflict do nothing
        returning membership_id
        {%- endif %}
    )

    update {{ ledger_environments_relation() }}
    set adopted_memberships = (select count(*) from adopted_memberships)
    where environment = '{{ environment }}'
{% endmacro %}


{% macro record_new_groups() %}
    {#-
        Post-hook of definition_groups, first: the groups this run inserted go into the ledger
        (before the membership diff, which finds the environment's groups there).  They are
        the rows dbt's merge inserted: created by this run, with the provenance of a desired
        group of the same name and type, and not yet in the ledger.
    -#}
    insert into {{ ledger_groups_relation() }}
        (group_id, environment, group_type, source_type, source_key, recorded_at)
    select
        definition_groups.id, '{{ migration_environment() }}', published_entries.group_type,
        published_entries.cache_type, published_entries.entry_key, {{ run_timestamp() }}
    from {{ this }} as definition_groups
    {#- the entries table, not the int_definition_groups view over it: joined to thousands of
        new groups, the view's metadata was rebuilt per group (98 s at scale 100) #}
    inner join {{ ref('int_group_entries') }} as published_entries
        on
            published_entries.is_published
            and definition_groups.type = published_entries.group_type
            and definition_groups.name = published_entries.group_name
            and definition_groups.metadata -> 'source' ->> 'type' = published_entries.cache_type
            and definition_groups.metadata -> 'source' ->> 'key' = published_entries.entry_key
    where
        definition_groups.environment = '{{ migration_environment() }}'
        and definition_groups.created_at = {{ run_timestamp() }}
        and not exists (
            select from {{ ledger_groups_relation() }} as ledger
            where ledger.group_id = definition_groups.id
        )
    on conflict do nothing
{% endmacro %}


{% macro record_first_memberships() %}
    {#- The build that creates group_memberships wrote every row of it: all go into the ledger. -#}
    insert into {{ ledger_memberships_relation() }} (membership_id, group_id, recorded_at)
    select id, group_id, {{ run_timestamp() }}
    from {{ this }}
    on conflict do nothing
{% endmacro %}
