{#-
    The run log: one row per dbt invocation and environment saying what the run changed in
    the two tables (groups and memberships inserted / updated / deleted) and how many
    exceptions it recorded — "what changed in PROD last night".  The rows are written by the
    marts' hooks inside the marts' own transactions, so a run that rolls back logs nothing.
    The exception counts are added by on-run-end (record_exception_counts): publishing does
    not wait for the exceptions model, which nothing it writes depends on.
    Each row also says where that build read and wrote: the schema of the legacy
    cache_entries and that of the operators' views.  The harness finds a target's tables from
    the newest build of its environment recorded here (validation/targets.py), never from
    whatever command last wrote a manifest.
-#}

{% macro run_log_relation() -%}
    {{ adapter.quote(target.schema) }}.migration_run_log
{%- endmacro %}


{% macro create_run_log() %}
    create table if not exists {{ run_log_relation() }} (
        invocation_id text not null,
        environment varchar(10) not null,
        run_started_at timestamp without time zone not null,
        finished_at timestamp without time zone,
        groups_inserted integer not null default 0,
        groups_updated integer not null default 0,
        groups_deleted integer not null default 0,
        memberships_inserted integer not null default 0,
        memberships_updated integer not null default 0,
        memberships_deleted integer not null default 0,
        exception_errors integer,
        exception_warnings integer,
        source_schema text,
        operations_schema text,
        primary key (invocation_id, environment)
    );
    comment on table {{ run_log_relation() }} is
        'One row per dbt run and environment: what the run changed in definition_groups and group_memberships (written by their hooks).';
{% endmacro %}


{% macro add_run_log_locations() %}
    {#- A run log made before it recorded where each build read and wrote: the two columns. -#}
    alter table {{ run_log_relation() }}
        add column if not exists source_schema text,
        add column if not exists operations_schema text;
{% endmacro %}


{% macro ensure_state_tables() %}
    {#-
        on-run-start: the run log, the batch sequence, the change log, the watermarks, the
        ledger (macros/run_state/ledger.sql) and the harness's build fingerprints
        (macros/run_state/build_fingerprints.sql), next to the two tables.  Only commands that build models need them, and DDL needs privileges
        a reader does not have, so a command that builds nothing (source freshness, test,
        docs generate, compile …) runs no statement at all, and a build creates only what is
        missing: once they exist, a run does no DDL.
    -#}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}
        {{ return('select 1 /* this command builds no model: no state tables needed */') }}
    {%- endif -%}
    {%- set found = run_query(
        "select to_regnamespace(" ~ sql_literal(adapter.quote(target.schema)) ~ ") is not null,"
        ~ " to_regclass(" ~ sql_literal(run_log_relation() | trim) ~ ") is not null,"
        ~ " to_regclass(" ~ sql_literal(batch_sequence() | trim) ~ ") is not null,"
        ~ " to_regclass(" ~ sql_literal(change_log_relation() | trim) ~ ") is not null,"
        ~ " to_regclass(" ~ sql_literal(adapter.quote(target.schema)
            ~ ".migration_change_log_environment_batch") ~ ") is not null,"
        ~ " to_regclass(" ~ sql_literal(watermarks_relation() | trim) ~ ") is not null,"
        ~ " exists (select from pg_attribute where attrelid = to_regclass("
            ~ sql_literal(change_log_relation() | trim) ~ ") and attname = 'published_at'),"
        ~ " to_regclass(" ~ sql_literal(ledger_groups_relation() | trim) ~ ") is not null"
        ~ " and to_regclass(" ~ sql_literal(ledger_memberships_relation() | trim) ~ ") is not null"
        ~ " and to_regclass(" ~ sql_literal(ledger_environments_relation() | trim) ~ ") is not null,"
        ~ " exists (select from pg_attribute where attrelid = to_regclass("
            ~ sql_literal(run_log_relation() | trim) ~ ") and attname = 'operations_schema'),"
        ~ " to_regclass(" ~ sql_literal(build_fingerprints_relation() | trim) ~ ") is not null"
    ).rows[0] -%}
    {%- if found | select | list | length == found | length -%}
        {{ return('select 1 /* the state tables exist: no DDL */') }}
    {%- endif -%}
    {%- if not found[0] %}
    create schema if not exists {{ adapter.quote(target.schema) }};
    {%- endif %}
    {%- if not found[1] %}
    {{ create_run_log() }}
    {%- elif not found[8] %}
    {{ add_run_log_locations() }}
    {%- endif %}
    {{ create_change_tracking(sequence=not found[2], change_log=not found[3],
        change_log_index=not found[4], watermarks=not found[5],
        published_at=found[3] and not found[6]) }}
    {%- if not found[7] %}
    {{ create_ledger() }}
    {%- endif %}
    {%- if not found[9] %}
    {{ create_build_fingerprints() }}
    {%- endif %}
{% endmacro %}


{% macro run_log_key() -%}
    invocation_id = '{{ invocation_id }}' and environment = '{{ migration_environment() }}'
{%- endmacro %}


{% macro open_run_log_entry() -%}
    insert into {{ run_log_relation() }}
        (invocation_id, environment, run_started_at, source_schema, operations_schema)
    values (
        '{{ invocation_id }}', '{{ migration_environment() }}', {{ run_timestamp() }},
        {{ sql_literal(source('legacy', 'cache_entries').schema) }},
        {{ sql_literal(generate_schema_name('ops', none) | trim) }}
    )
    on conflict do nothing
{%- endmacro %}


{% macro record_run_counts(groups_relation, memberships_relation) -%}
    {#- Inserted / updated counts follow from the run's timestamp, so recounting is idempotent. -#}
    update {{ run_log_relation() }} set
        groups_inserted = (
            select count(*) from {{ groups_relation }}
            where environment = '{{ migration_environment() }}' and created_at = {{ run_timestamp() }}
        ),
        groups_updated = (
            select count(*) from {{ groups_relation }}
            where
                environment = '{{ migration_environment() }}'
                and updated_at = {{ run_timestamp() }}
                and created_at <> {{ run_timestamp() }}
        ),
        {%- if memberships_relation is not none %}
        memberships_inserted = (
            select count(*)
            from {{ memberships_relation }} as group_memberships
            inner join {{ groups_relation }} as definition_groups
                on group_memberships.group_id = definition_groups.id
            where
                definition_groups.environment = '{{ migration_environment() }}'
                and group_memberships.added_at = {{ run_timestamp() }}
        ),
        memberships_updated = (
            select count(*)
            from {{ memberships_relation }} as group_memberships
            inner join {{ groups_relation }} as definition_groups
                on group_memberships.group_id = definition_groups.id
            where
                definition_groups.environment = '{{ migration_environment() }}'
                and group_memberships.updated_at = {{ run_timestamp() }}
                and group_memberships.added_at <> {{ run_timestamp() }}
        ),
        {%- endif %}
        finished_at = (clock_timestamp() at time zone 'UTC')
    where {{ run_log_key() }}
{%- endmacro %}


{% macro record_exception_counts(results) %}
    {#-
        on-run-end: add the exceptions this run recorded to its run log row, when the run both
        published (the row exists) and built migration_exceptions.  A run that built only
        one of them leaves the counts NULL: "not counted", rather than another run's figures.
    -#}
    {%- set exceptions = ref('migration_exceptions') -%}
    {%- set built = model_built_by_this_run(results, 'migration_exceptions') -%}
    {%- if built -%}
        update {{ run_log_relation() }} set
            exception_errors = (
                select count(*) from {{ exceptions }} where severity = 'error'
            ),
            exception_warnings = (
                select count(*) from {{ exceptions }} where severity = 'warning'
            )
        where {{ run_log_key() }}
    {%- else -%}
        select 1 /* migration_exceptions not built by this run: no counts to record */
    {%- endif -%}
{% endmacro %}

{% macro model_built_by_this_run(results, model_name) %}
    {#- on-run-end: whether this run's results include a successful build of the model -#}
    {%- for result in results
        if result.node.resource_type == 'model'
        and result.node.name == model_name
        and result.status == 'success' -%}
        {{ return(true) }}
    {%- endfor -%}
    {{ return(false) }}
{% endmacro %}
