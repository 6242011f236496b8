{% macro migration_environment() %}
    {#- The environment this run migrates: var('environment') when set, else the target name. -#}
    {%- set chosen = (var('environment', '') or target.name) | string | trim | upper -%}
    {%- set allowed = migration_environments() -%}
    {%- if chosen not in allowed -%}
        {{ exceptions.raise_compiler_error(
            "Unknown migration environment '" ~ chosen ~ "': use --target default|test|uat|prod "
            ~ "or --vars '{environment: PROD}' (one of " ~ allowed | join(', ') ~ ")."
        ) }}
    {%- endif -%}
    {{ return(chosen) }}
{% endmacro %}


{% macro migration_environments() %}
    {#- The environments a run can migrate: var('environments') in dbt_project.yml. -#}
    {{ return(var('environments')) }}
{% endmacro %}


{% macro environments_sql() -%}
    {#- The environments as an SQL list: ('DEFAULT', 'TEST', ...). -#}
    ('{{ migration_environments() | join("', '") }}')
{%- endmacro %}


{% macro run_timestamp() %}
    {#- One UTC wall-clock stamp for every row a run writes (run_started_at is UTC). -#}
    {{ return("'" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f') ~ "'::timestamp") }}
{% endmacro %}


{% macro in_run_environment() -%}
    {#-
        Filter on stg_legacy__cache_entries: the row belongs to this run's environment.  The
        exact spelling is tested first so the planner can use the column's statistics (almost
        every row is spelled exactly; without them it expects a handful of rows and picks
        plans that sort the whole environment).
    -#}
    (
        raw_environment = '{{ migration_environment() }}'
        or (is_known_environment and environment = '{{ migration_environment() }}')
    )
{%- endmacro %}


{% macro flag_var(name) %}
    {#- A yes/no var as given on the command line (--vars '{name: true}'); false when unset. -#}
    {{ return(var(name, false) in [true, 'true', 'True', 1, '1', 'yes']) }}
{% endmacro %}
