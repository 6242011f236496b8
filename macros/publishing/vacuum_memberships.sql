{#-
    Publishing, step 7 (on-run-end, after every model of the run): statistics and the
    visibility map for the analysts' index-only joins.
-#}

{% macro vacuum_memberships(results) %}
    {#-
        on-run-end hook (hooks run outside a transaction, as VACUUM needs), when this run built
        definition_groups or group_memberships.  VACUUM sets the visibility map, so the analysts' joins read the
        unique index alone (no heap fetches); it skips the pages no run touched, so it costs
        little when little changed, but still about 0.2 s at scale 100: a run that wrote no row
        skips it.  ANALYZE samples the whole table, so it runs only when this run wrote at least
        5 % of the rows (the first build wrote them all); smaller drift is autovacuum's.
        Why at the end of the run and not in the model's post-hook: VACUUM can mark a page
        visible to all only when no open snapshot predates the rows on it, and while the model
        commits, dbt's other threads are still building models whose transactions began
        earlier; at the end of the run, the run's own connections hold none (a long query of
        another session still can, and then autovacuum finishes the job later).
    -#}
    {%- set memberships = ref('group_memberships') -%}
    {#- the memberships are written by definition_groups' post-hook (publish_memberships), or,
        on the first build, by group_memberships -#}
    {%- set built = model_built_by_this_run(results, 'definition_groups')
        or model_built_by_this_run(results, 'group_memberships') -%}
    {%- set figures = [false, false] -%}
    {%- if built and execute -%}
        {%- set figures = run_query(
            "select table_rows <= 0 or rows_written > 0, table_rows <= 0 or rows_written >= 0.05 * table_rows"
            ~ " from ("
            ~ " select (select reltuples from pg_class where oid = '" ~ memberships ~ "'::regclass) as table_rows,"
            ~ " (select coalesce(sum(memberships_inserted + memberships_updated + memberships_deleted), 0)"
            ~ " from " ~ run_log_relation() ~ " where " ~ run_log_key() ~ ") as rows_written"
            ~ ") as figures"
        ).rows[0] -%}
    {%- endif -%}
    {%- if figures[0] -%}
        vacuum {% if figures[1] %}(analyze) {% endif %}{{ memberships }}
    {%- elif built -%}
        select 1 /* this run wrote no membership: nothing to vacuum */
    {%- else -%}
        select 1 /* this run published nothing: nothing to vacuum */
    {%- endif -%}
{% endmacro %}
