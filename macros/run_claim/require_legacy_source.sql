{#-
    A build reads the legacy cache_entries from the schema var('source_schema') names (set once
    with DBT_SOURCE_SCHEMA, or per run with --vars; models/staging/legacy/_legacy.yml).  When
    there is no such table, the run stops before it creates anything -- no schema, no state
    table, no claim -- and says which setting to change, instead of leaving four schemas behind
    and failing on a raw `relation "public.cache_entries" does not exist`.

    dbt creates the models' missing schemas before any on-run-start hook, so the check runs in
    two places: in postgres__create_schema (macros/run_claim/create_schema.sql), before the
    first schema is created, and as the first on-run-start hook, for a database whose schemas
    exist already.
-#}

{% macro legacy_source_missing() %}
    {#-
        The error message when this run builds models and the legacy table is not there (or
        cannot be seen); none otherwise.  Reads the catalog only, so it works without
        privileges on the schema (to_regclass would raise on a schema without USAGE).
    -#}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set cache = source('legacy', 'cache_entries') -%}
    {%- set found = run_query(
        "select exists (select from pg_class as c"
        ~ " join pg_namespace as n on n.oid = c.relnamespace"
        ~ " where n.nspname = " ~ sql_literal(cache.schema)
        ~ " and c.relname = " ~ sql_literal(cache.identifier)
        ~ " and c.relkind in ('r', 'p', 'v', 'm', 'f'))"
    ).rows[0][0] -%}
    {%- if found -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(
        "There is no table " ~ cache.schema ~ "." ~ cache.identifier ~ " in database "
        ~ target.database ~ ", so this run stopped before creating anything. Set "
        ~ "DBT_SOURCE_SCHEMA to the schema that holds the legacy cache_entries (or pass "
        ~ "--vars '{source_schema: <schema>}'), or point PGDATABASE at the database that holds it."
    ) }}
{% endmacro %}


{% macro require_legacy_source() %}
    {#- on-run-start, first hook: stop the run when the legacy table is missing. -#}
    {%- set missing = legacy_source_missing() -%}
    {%- if missing -%}
        {{ exceptions.raise_compiler_error(missing) }}
    {%- endif -%}
    {{ return('select 1 /* the legacy cache_entries is there (or this command reads none) */') }}
{% endmacro %}
