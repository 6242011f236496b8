{#-
    Publishing, step 7 (post-hook of group_memberships, after its commit): statistics and the
    visibility map for the analysts' index-only joins.
-#}

{% macro vacuum_memberships() %}
    {#-
        Post-hook of group_memberships, after the commit (VACUUM cannot run in a transaction).
        VACUUM sets the visibility map, so the analysts' joins read the unique index alone (no
        heap fetches); it skips the pages no run touched, so it costs little when little
        changed, but still about 0.2 s at scale 100: a run that wrote no row skips it.
        ANALYZE samples the whole table, so it runs only when this run wrote at least 5 % of
        the rows (the first build wrote them all); smaller drift is autovacuum's.
    -#}
    {%- set figures = [true, true] -%}
    {%- if execute -%}
        {%- set figures = run_query(
            "select table_rows <= 0 or rows_written > 0, table_rows <= 0 or rows_written >= 0.05 * table_rows"
            ~ " from ("
            ~ " select (select reltuples from pg_class where oid = '" ~ this ~ "'::regclass) as table_rows,"
            ~ " (select coalesce(sum(memberships_inserted + memberships_updated + memberships_deleted), 0)"
            ~ " from " ~ run_log_relation() ~ " where " ~ run_log_key() ~ ") as rows_written"
            ~ ") as figures"
        ).rows[0] -%}
    {%- endif -%}
    {%- if figures[0] -%}
        vacuum {% if figures[1] %}(analyze) {% endif %}{{ this }}
    {%- else -%}
        select 1 /* this run wrote no membership: nothing to vacuum */
    {%- endif -%}
{% endmacro %}
