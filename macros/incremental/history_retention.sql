{#-
    Retention of the history models: `dbt run-operation prune_history --target prod` (or with
    --args '{retention_days: 365}') keeps the periods of the last history_retention_days.  The
    history then starts at the cutoff: periods that ended before it are deleted, and the ones
    that were open at it start at it (their opened_batch still says which batch opened them).
    So every as-of answer from the cutoff on stays exact, and the query command refuses an
    earlier --as-of instead of answering from a partial history (`changes --since` an earlier
    date starts at the cutoff, and says so).  It logs where the history starts afterwards:
    the cutoff, or the first build with the history models when that is later (nothing was
    old enough to prune).
-#}

{% macro prune_history(retention_days=none) %}
    {%- set days = retention_days if retention_days is not none else var('history_retention_days', none) -%}
    {%- if days is none or days | string | trim == '' -%}
        {{ exceptions.raise_compiler_error(
            "prune_history: no retention set; set the var history_retention_days (dbt_project.yml "
            ~ "or --vars '{history_retention_days: 365}') or pass --args '{retention_days: 365}'."
        ) }}
    {%- endif -%}
    {#-
        A number of days, more than 0 and at most 1,000,000 (about 2,700 years: the cutoff stays
        a date PostgreSQL holds).  Jinja's float filter reads anything that is not a number as
        0, and nan compares false to everything, so this one test refuses text, 0, negatives,
        nan and inf before any SQL runs.
    -#}
    {%- set number = days | float -%}
    {%- if not (number > 0 and number <= 1000000) -%}
        {{ exceptions.raise_compiler_error(
            "prune_history: retention_days must be a number of days above 0 and at most "
            ~ "1000000, not " ~ days ~ "; e.g. --args '{retention_days: 365}'."
        ) }}
    {%- endif -%}
    {%- set shown_days = "%g" | format(number) -%}
    {%- set environment = migration_environment() -%}
    {#- a number times a day: '8.4e-05 days' is no interval literal, 8.4e-05 is a number -#}
    {%- set cutoff = "(" ~ run_timestamp() ~ " - interval '1 day' * " ~ number ~ ")" -%}
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
    {#- where the history starts now: the cutoff, or its first build when that is later -#}
    {%- set starts = run_query(
        "select to_char(min(valid_from), 'YYYY-MM-DD HH24:MI:SS'), min(valid_from) > " ~ cutoff
        ~ " from " ~ ref('definition_group_history') ~ " where environment = '" ~ environment ~ "'"
    ).rows[0] -%}
    {%- if starts[0] is none -%}
        {{ log("prune_history: " ~ environment ~ " has no history (yet): nothing to prune.", info=true) }}
    {%- elif starts[1] -%}
        {{ log("prune_history: " ~ environment ~ "'s history starts at " ~ starts[0] ~ " UTC, "
            ~ "within the last " ~ shown_days ~ " days: nothing was older, nothing was pruned.", info=true) }}
    {%- else -%}
        {{ log("prune_history: " ~ environment ~ "'s history now starts at " ~ starts[0]
            ~ " UTC (" ~ shown_days ~ " days before this run); the periods before it are pruned.",
            info=true) }}
    {%- endif -%}
{% endmacro %}
