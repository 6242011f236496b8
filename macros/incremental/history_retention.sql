{#-
    Retention of the history models: `dbt run-operation prune_history --target prod` (or with
    --args '{retention_days: 365}') keeps the periods of the last history_retention_days.  The
    history then starts at the cutoff: periods that ended before it are deleted, and the ones
    that were open at it start at it (their opened_batch still says which batch opened them).
    So every as-of answer from the cutoff on stays exact, and the query command refuses an
    earlier date instead of answering from a partial history.
-#}

{% macro prune_history(retention_days=none) %}
    {%- set days = retention_days if retention_days is not none else var('history_retention_days', none) -%}
    {%- if days is none or days | string | trim == '' -%}
        {{ exceptions.raise_compiler_error(
            "prune_history: no retention set; set the var history_retention_days (dbt_project.yml "
            ~ "or --vars '{history_retention_days: 365}') or pass --args '{retention_days: 365}'."
        ) }}
    {%- endif -%}
    {%- if (days | float) <= 0 -%}
        {{ exceptions.raise_compiler_error(
            "prune_history: retention_days must be a positive number of days, not " ~ days ~ "."
        ) }}
    {%- endif -%}
    {%- set environment = migration_environment() -%}
    {#- a number times a day: '8.4e-05 days' is no interval literal, 8.4e-05 is a number -#}
    {%- set cutoff = "(" ~ run_timestamp() ~ " - interval '1 day' * " ~ (days | float) ~ ")" -%}
    {%- set statements = ["begin"] -%}
    {%- for model in [ref('group_membership_history'), ref('definition_group_history')] -%}
        {%- do statements.append(serialize_mart_writes(model.identifier) | trim) -%}
        {%- do statements.append(
            "delete from " ~ model ~ " where environment = '" ~ environment
            ~ "' and valid_to <= " ~ cutoff
        ) -%}
        {%- do statements.append(
            "update " ~ model ~ " set valid_from = " ~ cutoff ~ " where environment = '"
            ~ environment ~ "' and valid_from < " ~ cutoff
        ) -%}
    {%- endfor -%}
    {%- do statements.append("commit") -%}
    {%- do run_query(statements | join(";\n")) -%}
    {{ log("prune_history: " ~ environment ~ "'s history now starts "
        ~ (days | float) ~ " days before this run", info=true) }}
{% endmacro %}
