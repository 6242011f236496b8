{% macro migration_environment() %}
    {#- The environment this run migrates: var('environment') when set, else the target name. -#}
    {%- set chosen = (var('environment', '') or target.name) | string | trim | upper -%}
    {%- set allowed = ['DEFAULT', 'TEST', 'UAT', 'PROD'] -%}
    {%- if chosen not in allowed -%}
        {{ exceptions.raise_compiler_error(
            "Unknown migration environment '" ~ chosen ~ "': use --target default|test|uat|prod "
            ~ "or --vars '{environment: PROD}' (one of " ~ allowed | join(', ') ~ ")."
        ) }}
    {%- endif -%}
    {{ return(chosen) }}
{% endmacro %}


{% macro run_timestamp() %}
    {#- One UTC wall-clock stamp for every row a run writes (run_started_at is UTC). -#}
    {{ return("'" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f') ~ "'::timestamp") }}
{% endmacro %}
