{#-
    Publishing, step 6 (post-hook of group_memberships, before any analyst model reads the
    table): statistics; step 7 (on-run-end, after every model of the run): the visibility map
    for the analysts' index-only joins.
-#}

{% macro membership_write_figures(memberships) -%}
    {#- One row: (the table exists and has no statistics yet or this run wrote a membership,
        it exists and has none or this run wrote at least 5 % of its rows). -#}
    select
        table_rows is not null and (not has_statistics or rows_written > 0),
        table_rows is not null
        and (not has_statistics or table_rows <= 0 or rows_written >= 0.05 * table_rows)
    from (
        select
            (
                select reltuples from pg_class
                where oid = to_regclass({{ sql_literal(memberships) }})
            ) as table_rows,
            exists (
                select from pg_stats
                where
                    schemaname = {{ sql_literal(memberships.schema) }}
                    and tablename = {{ sql_literal(memberships.identifier) }}
            ) as has_statistics,
            (
                select coalesce(sum(memberships_inserted + memberships_updated + memberships_deleted), 0)
                from {{ run_log_relation() }} where {{ run_log_key() }}
            ) as rows_written
    ) as figures
{%- endmacro %}


{% macro analyze_memberships() %}
    {#-
        Post-hook of group_memberships, in its transaction: the analyst models come next, and
        a table without statistics (or its ledger's, which the history and the tests join)
        makes the planner guess its size and spread (at scale 100,
        etf_overlap crossed every pair of ETFs before joining the memberships: estimated cost
        9e11 against 5e6, minutes against seconds).  ANALYZE samples the table, so it runs
        when the table has no statistics (the first build created it) or this run wrote at
        least 5 % of its rows; smaller drift is autovacuum's.
    -#}
    {%- set figures = [false, false] -%}
    {%- if execute -%}
        {%- set figures = run_query(membership_write_figures(this)).rows[0] -%}
    {%- endif -%}
    {%- if figures[1] -%}
        analyze {{ this }};
        analyze {{ ledger_memberships_relation() }}
    {%- else -%}
        select 1 /* statistics kept: this run wrote under 5 % of the memberships */
    {%- endif -%}
{% endmacro %}


{% macro vacuum_memberships(results) %}
    {#-
        on-run-end hook (hooks run outside a transaction, as VACUUM needs), when this run built
        definition_groups or group_memberships.  VACUUM sets the visibility map, so the analysts' joins read the
        unique index alone (no heap fetches); it skips the pages no run touched, so it costs
        little when little changed, but still about 0.2 s at scale 100: a run that wrote no row
        skips it.  It also analyzes the table when the run wrote enough to need it and
        group_memberships' own post-hook (analyze_memberships) did not run, as in
        `dbt run -s +definition_groups`.
        Why at the end of the run and not in the model's post-hook: VACUUM can mark a page
        visible to all only when no open snapshot predates the rows on it, and while the model
        commits, dbt's other threads are still building models whose transactions began
        earlier; at the end of the run, the run's own connections hold none (a long query of
        another session still can, and then autovacuum finishes the job later).
    -#}
    {%- set memberships = ref('group_memberships') -%}
    {#- the memberships are written by definition_groups' post-hook (publish_memberships), or,
        on the first build, by group_memberships -#}
    {%- set analyzed = model_built_by_this_run(results, 'group_memberships') -%}
    {%- set built = model_built_by_this_run(results, 'definition_groups') or analyzed -%}
    {%- set figures = [false, false] -%}
    {%- if built and execute -%}
        {%- set figures = run_query(membership_write_figures(memberships)).rows[0] -%}
    {%- endif -%}
    {%- if figures[0] -%}
        vacuum {% if figures[1] and not analyzed %}(analyze) {% endif %}{{ memberships }}
    {%- elif built -%}
        select 1 /* this run wrote no membership: nothing to vacuum */
    {%- else -%}
        select 1 /* this run published nothing: nothing to vacuum */
    {%- endif -%}
{% endmacro %}
